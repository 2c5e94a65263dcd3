"""The kinds of dataset the course builds: the shop (every lesson) and the library (the on-call lesson).

A `Dataset` says what the one build skeleton in `build` needs to know: the tables in insert order, the models'
metadata, the seeded generator, and the name that places it (`<name>-<size>.sqlite`, PostgreSQL `<name>_<size>`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import MetaData
from sqlalchemy.engine import URL

from ..config import Settings, data_dir, size_spec
from ..db import course_url, parse_url
from ..errors import CourseError
from ..library.models import Base as LibraryBase
from ..servers import postgres_url
from ..shop.models import Base as ShopBase
from .generate import Row, generate_rows
from .info import TABLE_ORDER
from .library import LIBRARY_TABLES, generate_library_rows, library_total_rows

__all__ = ["LIBRARY", "SHOP", "Dataset", "Generate", "dataset_url"]

Generate = Callable[[str, int], Iterator[tuple[str, list[Row]]]]


@dataclass(frozen=True)
class Dataset:
    """One kind of course dataset."""

    name: str
    tables: tuple[str, ...]
    metadata: MetaData
    generate: Generate
    total_rows: Callable[[str], int]


SHOP = Dataset("shop", TABLE_ORDER, ShopBase.metadata, generate_rows, lambda size: size_spec(size).total_rows)
LIBRARY = Dataset("library", LIBRARY_TABLES, LibraryBase.metadata, generate_library_rows, library_total_rows)


def dataset_url(dataset: Dataset, s: Settings) -> URL:
    """Where `dataset` of the settings' size lives on the settings' backend (the shop: `course_url`)."""
    if dataset is SHOP:
        return course_url(s)
    if s.database_url:
        raise CourseError(
            f"The {dataset.name} dataset lives on the course's own databases: unset DATABASE_URL and choose "
            "COURSE_BACKEND=sqlite or postgres for this lesson."
        )
    if s.backend == "postgres":
        return parse_url(postgres_url(f"{dataset.name}_{s.size}"), source="the course PostgreSQL URL")
    course_url(s)  # makes the course's data folder, or says in one line why it cannot
    return URL.create("sqlite+pysqlite", database=str(data_dir() / f"{dataset.name}-{s.size}.sqlite"))
