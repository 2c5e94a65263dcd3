"""A query panel in the notebook: what Flask-DebugToolbar's SQL panel shows, for plain SQLAlchemy.

    panel = QueryPanel(app.extensions["engine"])
    panel.request(client, "/orders")     # the statements of one request
    with panel.capture("my query"): ...  # or of a block of code
    panel.watch()                         # or of every cell run from now on (panel.unwatch() to stop)
    panel                                 # displays it

Each statement shows its duration, the line of application code that issued it, its SQL and parameters, and
an EXPLAIN button that runs EXPLAIN (ANALYZE on PostgreSQL) with the statement's own parameters. Statements
whose shape repeats (an N+1) are marked in a colour per shape. The widgets carry stable CSS classes for
browser tests: `course-query-panel` (the panel), `course-query-row` (a statement, plus `course-query-repeated`
when its shape repeats), `course-explain-button` and `course-explain-output`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from html import escape
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as w
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import CourseError
from .profiling import Trace, TracedStatement, explain_statement, explainable, one_line, trace
from .query_budget import compact_sql

if TYPE_CHECKING:
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

__all__ = ["QueryPanel"]

# One colour per repeated shape (light backgrounds, strong left borders).
_SHAPE_COLOURS = ("#b04a3a", "#3a6fb0", "#4a9a5a", "#8a5ab0", "#c08a2a", "#2a9aa0")
_MONO = "font-family:var(--jp-code-font-family,monospace);font-size:12px"


class QueryPanel:
    """The statements of the last request, block or cell, with an EXPLAIN button each."""

    _watching: ClassVar[list[QueryPanel]] = []  # at most one panel follows the cells (Run All twice)

    def __init__(self, engine: Engine, *, max_rows: int = 40, title: str = "Queries") -> None:
        self.engine = engine
        self.max_rows = max_rows
        self.title = title
        self.trace: Trace = Trace()
        self.label = ""
        self.rows: list[_QueryRow] = []
        self.summary = w.HTML()
        self.summary.add_class("course-query-summary")
        self.shapes = w.HTML()
        self.shapes.add_class("course-query-shapes")
        self.list = w.VBox()
        self.widget = w.VBox(
            [self.summary, self.shapes, self.list],
            layout=w.Layout(border="1px solid #d0d4da", padding="6px 10px", width="100%"),
        )
        self.widget.add_class("course-query-panel")
        self._shell: Any = None
        self._cell: ExitStack | None = None
        self._cell_trace: Trace | None = None
        self.show(self.trace, "nothing recorded yet")

    # ------------------------------------------------------------------ recording
    @contextmanager
    def capture(self, label: str = "block") -> Iterator[Trace]:
        """Record the statements of the block, then show them."""
        with trace(self.engine) as recorded:
            yield recorded
        self.show(recorded, label)

    def request(self, client: FlaskClient, url: str, method: str = "GET", **kwargs: Any) -> TestResponse:
        """Send a request through a Flask test client and show its statements; returns the response."""
        with trace(self.engine) as recorded:
            response = client.open(url, method=method, **kwargs)
        self.show(recorded, f"{method} {url} → {response.status_code}")
        return response

    def watch(self, shell: Any = None) -> None:
        """Show the statements of every cell run from now on (IPython's pre/post_run_cell events)."""
        if shell is None:
            from IPython import get_ipython  # deferred: IPython is there only in a notebook's kernel

            shell = get_ipython()
            if shell is None:
                raise CourseError("watch() follows notebook cells: use it in Jupyter, or use capture() instead.")
        for panel in list(QueryPanel._watching):
            panel.unwatch()
        shell.events.register("pre_run_cell", self._cell_starts)
        shell.events.register("post_run_cell", self._cell_ends)
        self._shell = shell
        QueryPanel._watching.append(self)

    def unwatch(self) -> None:
        """Stop following cells."""
        if self._shell is not None:
            self._shell.events.unregister("pre_run_cell", self._cell_starts)
            self._shell.events.unregister("post_run_cell", self._cell_ends)
            self._shell = None
        if self._cell is not None:
            self._cell.close()
            self._cell = None
        if self in QueryPanel._watching:
            QueryPanel._watching.remove(self)

    def _cell_starts(self, info: Any = None) -> None:
        if self._cell is not None:
            self._cell.close()
        self._cell = ExitStack()
        self._cell_trace = self._cell.enter_context(trace(self.engine))

    def _cell_ends(self, result: Any = None) -> None:
        if self._cell is None or self._cell_trace is None:
            return
        self._cell.close()
        self._cell = None
        if self._cell_trace.count:  # a cell without statements leaves the previous one on show
            self.show(self._cell_trace, "the last cell")

    # ------------------------------------------------------------------ display
    def show(self, recorded: Trace, label: str) -> None:
        """Fill the panel with `recorded`'s statements."""
        self.trace, self.label = recorded, label
        statements = recorded.traced()
        counts = recorded.shapes()
        repeated = [shape for shape, n in counts.most_common() if n > 1]
        colours = {shape: _SHAPE_COLOURS[i % len(_SHAPE_COLOURS)] for i, shape in enumerate(repeated)}
        total_ms = recorded.total_s * 1000
        self.summary.value = (
            f"<b>{escape(self.title)}</b> · {escape(label)} · <b>{len(statements)}</b> statement"
            f"{'s' if len(statements) != 1 else ''} in {total_ms:.2f} ms · "
            + (
                f"<span style='color:#b04a3a'><b>{len(repeated)}</b> repeated shape"
                f"{'s' if len(repeated) != 1 else ''}</span>"
                if repeated
                else "no repeated shapes"
            )
        )
        self.shapes.value = _shapes_table(recorded, colours) if repeated else ""
        self.rows = [
            _QueryRow(i, s, self.engine, colours.get(s.shape), counts[s.shape])
            for i, s in enumerate(statements[: self.max_rows], 1)
        ]
        children: list[w.Widget] = [row.widget for row in self.rows]
        if len(statements) > self.max_rows:
            more = w.HTML(
                f"<i>… and {len(statements) - self.max_rows:,} more statements (max_rows={self.max_rows})</i>"
            )
            children.append(more)
        self.list.children = tuple(children)

    def _ipython_display_(self) -> None:
        from IPython.display import display  # deferred: IPython is there only in a notebook's kernel

        display(self.widget)

    def __repr__(self) -> str:
        return f"QueryPanel({self.label!r}, {self.trace.count} statements)"


def _shapes_table(recorded: Trace, colours: dict[str, str]) -> str:
    """The repeated shapes as an HTML table: times, total ms, where issued, the shape."""
    frame = recorded.by_shape(at_least=2)
    rows = "".join(
        f"<tr><td style='border-left:5px solid {colours.get(r['shape'], '#999')};padding:2px 6px'>"
        f"{r['times']}×</td>"
        f"<td style='padding:2px 6px'>{r['total_ms']:.2f} ms</td>"
        f"<td style='padding:2px 6px'>{escape(r['issued at'])}</td>"
        f"<td style='padding:2px 6px;{_MONO}'>{escape(compact_sql(r['shape'], 140))}</td></tr>"
        for r in frame.to_dict("records")
    )
    return (
        "<table style='border-collapse:collapse;margin:4px 0'><tr><th style='text-align:left'>repeated</th>"
        "<th style='text-align:left'>total</th><th style='text-align:left'>issued at</th>"
        f"<th style='text-align:left'>shape</th></tr>{rows}</table>"
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class _QueryRow:
    """One statement in the panel: what it is, where it came from, and its EXPLAIN button and output."""

    def __init__(
        self, index: int, statement: TracedStatement, engine: Engine, colour: str | None, times: int
    ) -> None:
        self.index = index
        self.statement = statement
        self.engine = engine
        badge = (
            f" <span style='background:{colour};color:white;border-radius:3px;padding:0 4px'>shape ×{times}</span>"
            if colour
            else ""
        )
        code = escape(statement.origin.code) if statement.origin else ""
        self.info = w.HTML(
            # overflow-wrap: a long line of code wraps inside its column instead of running under the SQL
            f"<div style='{_MONO};overflow-wrap:anywhere;padding-right:8px'><b>#{index}</b> "
            f"{statement.duration_s * 1000:.3f} ms{badge}<br>"
            f"<span style='color:#555'>{escape(statement.where)}</span>"
            + (f" <code>{code}</code>" if code else "")
            + "</div>",
            layout=w.Layout(width="34%"),
        )
        params = _cut(repr(statement.params), 200)
        self.sql = w.HTML(
            f"<div style='{_MONO};white-space:pre-wrap;overflow-wrap:anywhere' "
            f"title='{escape(one_line(statement.sql))}'>"
            f"{escape(_cut(one_line(statement.sql), 400))}</div>"
            f"<div style='{_MONO};color:#777'>parameters: {escape(params)}</div>",
            layout=w.Layout(width="54%"),
        )
        can_explain = explainable(statement)
        analyze = engine.dialect.name == "postgresql" and statement.sql.lstrip()[:6].upper() in ("SELECT", "WITH")
        self.button = w.Button(
            description="EXPLAIN",
            tooltip=(
                f"EXPLAIN {'ANALYZE ' if analyze else ''}statement #{index}"
                if can_explain
                else "EXPLAIN shows plans of queries and data changes only"
            ),
            disabled=not can_explain,
            layout=w.Layout(width="auto"),
        )
        self.button.add_class("course-explain-button")
        self.button.on_click(self.explain)
        self.output = w.HTML()
        self.output.add_class("course-explain-output")
        top = w.HBox([self.info, self.sql, self.button], layout=w.Layout(width="100%", align_items="flex-start"))
        border = f"4px solid {colour}" if colour else "4px solid transparent"
        self.widget = w.VBox(
            [top, self.output],
            layout=w.Layout(border_left=border, padding="3px 6px", margin="2px 0"),
        )
        self.widget.add_class("course-query-row")
        if colour:
            self.widget.add_class("course-query-repeated")

    def explain(self, _button: Any = None) -> None:
        """Run EXPLAIN on this statement and show the plan under it (the button's callback)."""
        self.button.disabled = True
        try:
            plan = explain_statement(self.engine, self.statement)
        except CourseError as exc:
            self.output.value = f"<div style='color:#b00020'>{escape(str(exc))}</div>"
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            self.output.value = f"<div style='color:#b00020'>EXPLAIN failed: {escape(reason)}</div>"
        else:
            kind = "EXPLAIN ANALYZE" if any("actual time" in line for line in plan.lines) else "EXPLAIN"
            self.output.value = (
                f"<div style='color:#555;font-size:11px'>{kind} of statement #{self.index} "
                f"({plan.backend})</div><pre style='margin:2px 0;{_MONO}'>{escape(plan.text)}</pre>"
            )
        finally:
            self.button.disabled = False
