"""Show course code and tables in a notebook: source listings, truncated samples, lesson links."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

import pandas as pd
from IPython.display import Markdown, display
from sqlalchemy import Engine
from sqlalchemy import inspect as inspect_db


def show_source(*objects: Any) -> None:
    """Display the source of functions, classes or modules from the course package, highlighted."""
    for obj in objects:
        source = textwrap.dedent(inspect.getsource(obj))
        where = inspect.getsourcefile(inspect.unwrap(obj)) or ""  # a decorated view: the file it is written in
        short = where[where.find("helpers/") :] if "helpers/" in where else where
        display(Markdown(f"`{short}`\n```python\n{source}```"))


def ms_text(value: Any) -> str:
    """Milliseconds with the digits that matter: 1,234 · 123 · 12.3 · 1.23 · 0.123."""
    if value is None or value != value:  # None or NaN
        return "–"
    v = float(value)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def number_text(value: Any) -> str:
    """Any float in a table, as ms_text writes milliseconds; values under 0.001 in scientific notation."""
    if value is None or value != value:
        return "NaN"
    v = float(value)
    return f"{v:.2e}" if v and abs(v) < 0.001 else ms_text(v)


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
    from .data import TABLE_ORDER

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
    from .lessons import LESSONS

    display(
        Markdown("\n".join(f"{i + 1}. [{le.number} · {le.title}]({le.filename})" for i, le in enumerate(LESSONS)))
    )
