"""Show course code and tables in a notebook: source listings, truncated samples, lesson links."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from html import escape
from typing import Any

import pandas as pd
from IPython import get_ipython
from IPython.display import HTML, Markdown, display
from sqlalchemy import Engine
from sqlalchemy import inspect as inspect_db

from ..data import TABLE_ORDER
from ..lessons import LESSONS
from .units import ms_text, number_text

__all__ = [
    "lesson_links",
    "sample",
    "say",
    "schema_table",
    "set_table_options",
    "show_code",
    "show_source",
    "styled",
]


def show_source(*objects: Any) -> None:
    """Display the source of functions, classes or modules from the course package, highlighted."""
    for obj in objects:
        source = textwrap.dedent(inspect.getsource(obj))
        where = inspect.getsourcefile(inspect.unwrap(obj)) or ""  # a decorated view: the file it is written in
        short = where[where.find("helpers/") :] if "helpers/" in where else where
        display(Markdown(f"`{short}`\n```python\n{source}```"))


def set_table_options() -> None:
    """Plain pandas tables read like the course's styled ones: floats with the digits that matter."""
    pd.set_option("display.float_format", number_text)
    pd.set_option("display.max_colwidth", 80)  # SQL statements and plan lines stay readable


def styled(frame: pd.DataFrame) -> Any:
    """A table formatted for reading: ms with sensible digits, speed-ups as ×, counts with separators."""
    formats: dict[str, Any] = {}
    for column in frame.columns:
        name = str(column)
        if name.endswith("_ms") or name.endswith("(ms)"):
            formats[column] = ms_text
        elif name in ("speedup", "ratio") or name.startswith("ratio"):
            formats[column] = lambda v: "–" if v != v else f"{v:.1f}×"
        elif name in ("runs", "statements", "rows") or frame[column].dtype.kind in "iu":
            formats[column] = lambda v: "–" if v is None or v != v else f"{int(v):,}"
        elif frame[column].dtype.kind == "f":  # anything else measured (requests per second, ...)
            formats[column] = number_text
    return frame.style.format(formats, na_rep="–")


def sample(frame: pd.DataFrame, width: int = 40) -> pd.DataFrame:
    """A copy of `frame` with long text cut to `width` characters, for readable previews."""

    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > width:
            return value[: width - 1] + "…"
        return value

    return frame.map(cut)


def schema_table(engine: Engine) -> pd.DataFrame:
    """Every column of the shop tables with its type, primary key and the table it references."""

    inspector = inspect_db(engine)
    rows = []
    for table in TABLE_ORDER:
        primary = inspector.get_pk_constraint(table)["constrained_columns"]
        references = {
            column: f"{fk['referred_table']}.{fk['referred_columns'][0]}"
            for fk in inspector.get_foreign_keys(table)
            for column in fk["constrained_columns"]
        }
        for col in inspector.get_columns(table):
            rows.append(
                {
                    "table": table,
                    "column": col["name"],
                    "type": str(col["type"]),
                    "primary key": col["name"] in primary,
                    "references": references.get(col["name"], ""),
                }
            )
    return pd.DataFrame(rows).set_index(["table", "column"])


def lesson_links() -> None:
    """The list of lessons as Markdown links."""

    display(
        Markdown("\n".join(f"{i + 1}. [{le.number} · {le.title}]({le.filename})" for i, le in enumerate(LESSONS)))
    )


def _show(plain: str, rich: Callable[[], Any]) -> None:
    """Print `plain` outside IPython; in a notebook display the rich form instead."""

    if get_ipython() is None:
        print(plain)
    else:
        display(rich())


def say(message: str, color: str) -> None:

    _show(message, lambda: HTML(f'<div style="color:{color};font-weight:600">{escape(message)}</div>'))


def show_code(code: str) -> None:

    _show(code, lambda: Markdown(f"```python\n{code}```"))
