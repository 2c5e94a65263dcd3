"""Find where a request's time goes: statements with the line that issued them, profiles grouped by package,
EXPLAIN of a recorded statement, and PostgreSQL's own slow-query log read back from its file.

* `application_frame()` walks the stack to the first frame of *application* code (a notebook cell, the shop's
  views), past SQLAlchemy, Flask, the standard library and the course's own infrastructure;
* `trace(engine)` records statements like `helpers.measure.recorder.record`, each with that frame (`Trace`);
* `explain_statement` runs EXPLAIN (ANALYZE on PostgreSQL) on a recorded statement with its own parameters;
* `time_by_category` sums a cProfile or pyinstrument profile's self time by package (driver, ORM, Flask, ...);
  `time_by_line` gives one function's time by line, from pyinstrument's samples;
* `postgres_log_path`, `read_postgres_log` and `statement_entries` read the course server's log;
* `run_test_file` runs a test file with pytest in a process of its own and reads back each test's outcome;
* `lesson_requests` and `report_days`: the lesson's requests, sized so that every one stays quick at every size.
"""

from __future__ import annotations

import linecache
import logging
import os
import pstats
import re
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError

from ..config import PROJECT_ROOT
from ..db import Executed, make_engine, statements_heard
from ..errors import CourseError
from ..measure.plans import Plan, explain_sql
from ..measure.recorder import QueryRecorder, Statement
from ..servers import postgres_log_path  # re-exported: the lesson reads the log through this module

if TYPE_CHECKING:
    import pandas as pd

    from ..course import Course
    from ..measure.harness import Comparison

__all__ = [
    "CATEGORIES",
    "AutoExplain",
    "LogEntry",
    "Origin",
    "ProfileRuns",
    "PytestRun",
    "SQLAlchemyTools",
    "Trace",
    "TracedStatement",
    "application_frame",
    "auto_explain",
    "category_of",
    "explain_statement",
    "explainable",
    "is_application_file",
    "is_library_file",
    "lesson_requests",
    "log_size",
    "one_line",
    "overheads_said",
    "plan_entries",
    "profile_runs",
    "read_postgres_log",
    "report_days",
    "run_test_file",
    "server_slow_log",
    "short_path",
    "slow_logger",
    "sqlalchemy_tools",
    "statement_entries",
    "time_by_category",
    "time_by_line",
    "trace",
]

# ---------------------------------------------------------------------------------------- who issued it
_PATHS = sysconfig.get_paths()
# Where library code lives: the standard library, site-packages (SQLAlchemy, Flask, ...), installed scripts.
# Both as configured and resolved: a venv's paths may pass through symlinks.
_LIBRARY_DIRS: tuple[str, ...] = tuple(
    dict.fromkeys(
        str(path) + "/"
        for key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts")
        for path in (Path(_PATHS[key]), Path(_PATHS[key]).resolve())
    )
)
_HELPERS = str(PROJECT_ROOT / "helpers") + "/"
_SHOP = _HELPERS + "shop/"
# The shop's database wiring is framework code (sessions, the per-request counters), not a view.
_SHOP_PLUMBING = frozenset({_SHOP + "db.py", _SHOP + "serve.py"})


@lru_cache(maxsize=4096)
def is_library_file(filename: str) -> bool:
    """Library code: the standard library, installed packages, or code without a file (`<frozen ...>`)."""
    if filename.startswith("<"):
        return not filename.startswith("<ipython-input")  # plain IPython names cells <ipython-input-…>
    return filename.startswith(_LIBRARY_DIRS)


@lru_cache(maxsize=4096)
def is_application_file(filename: str) -> bool:
    """Code a learner reads as *theirs*: notebook cells, the shop's views and queries, data/my_app/ answers.

    The course's own infrastructure (helpers/ outside helpers/shop/, and the shop's session plumbing) is not.
    """
    if is_library_file(filename):
        return False
    if filename.startswith(_HELPERS):
        return filename.startswith(_SHOP) and filename not in _SHOP_PLUMBING
    return True


@dataclass(frozen=True)
class Origin:
    """The line of application code that issued a statement."""

    filename: str
    lineno: int
    function: str

    @property
    def code(self) -> str:
        """The source line itself (empty when the source cannot be read back)."""
        return linecache.getline(self.filename, self.lineno).strip()

    @property
    def where(self) -> str:
        """A short 'file:line' a learner recognises: a project-relative path, or 'cell In [n]' in a notebook."""
        return f"{short_path(self.filename)}:{self.lineno}"

    def __str__(self) -> str:
        return f"{self.where} in {self.function}"


def short_path(filename: str) -> str:
    """A project-relative path, 'cell In [12]' for a notebook cell, or the path inside site-packages."""
    cell = _cell_label(filename)
    if cell:
        return cell
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    root = str(PROJECT_ROOT) + "/"
    if filename.startswith(root):
        return filename[len(root) :]
    return filename


def _cell_label(filename: str) -> str | None:
    """'cell In [12]' for code that IPython compiled from a notebook cell, else None."""
    if not (filename.startswith("<ipython-input") or re.search(r"/ipykernel_\d+/", filename)):
        return None
    try:
        from IPython import get_ipython  # deferred: IPython is there only in a notebook's kernel

        shell = get_ipython()
        number = getattr(getattr(shell, "compile", None), "_filename_map", {}).get(filename)
    except ImportError:  # pragma: no cover - IPython is a dependency
        number = None
    return f"cell In [{number}]" if number is not None else "a notebook cell"


def application_frame(frame: FrameType | None = None) -> Origin | None:
    """The innermost frame of application code on the stack, starting at `frame`; None if there is none.

    By default the search starts *above* the function that calls this one: called from an event listener
    (which is application code itself when a notebook cell defines it), it finds the code that ran the
    statement, not the listener.
    """
    current: FrameType | None = frame if frame is not None else sys._getframe(2)
    while current is not None:
        filename = current.f_code.co_filename
        if is_application_file(filename):
            return Origin(filename, current.f_lineno, current.f_code.co_name)
        current = current.f_back
    return None


# ---------------------------------------------------------------------------------------- tracing
@dataclass(frozen=True)
class TracedStatement(Statement):
    """A statement with the application line that issued it."""

    origin: Origin | None = None

    @property
    def where(self) -> str:
        return self.origin.where if self.origin else "(no application code on the stack)"


class Trace(QueryRecorder):
    """Statements recorded by `trace`, each with its origin; grouped by shape they show an N+1 and its line."""

    def traced(self) -> list[TracedStatement]:
        return [s for s in self.statements if isinstance(s, TracedStatement)]

    def slowest(self) -> TracedStatement:
        """The statement that took longest (CourseError when nothing was recorded)."""
        statements = self.traced()
        if not statements:
            raise CourseError("No statements were recorded: run the code inside `with trace(engine) as t:`.")
        return max(statements, key=lambda s: s.duration_s)

    def table(self) -> pd.DataFrame:
        """One row per statement: ms, where it was issued, the code line, the SQL on one line, parameters."""
        import pandas as pd  # deferred: pandas is heavy; only the tables need it

        return pd.DataFrame(
            {
                "duration_ms": [s.duration_s * 1000 for s in self.traced()],
                "issued at": [s.where for s in self.traced()],
                "code": [s.origin.code if s.origin else "" for s in self.traced()],
                "sql": [one_line(s.sql) for s in self.traced()],
                "params": [s.params for s in self.traced()],
            }
        )

    def by_shape(self, at_least: int = 1) -> pd.DataFrame:
        """One row per statement shape run `at_least` times: count, total ms, and every line that issued it."""
        import pandas as pd  # deferred: pandas is heavy; only the tables need it

        groups: dict[str, list[TracedStatement]] = {}
        for s in self.traced():
            groups.setdefault(s.shape, []).append(s)
        rows = [
            {
                "times": len(members),
                "total_ms": sum(s.duration_s for s in members) * 1000,
                "issued at": ", ".join(dict.fromkeys(s.where for s in members)),
                "code": " | ".join(dict.fromkeys(s.origin.code for s in members if s.origin)),
                "shape": shape,
            }
            for shape, members in groups.items()
            if len(members) >= at_least
        ]
        columns = ["times", "total_ms", "issued at", "code", "shape"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.sort_values(["times", "total_ms"], ascending=False, ignore_index=True)

    def __repr__(self) -> str:
        return f"Trace({self.count} statements, {self.total_s * 1000:.2f} ms)"


def one_line(sql: str) -> str:
    """SQL with its whitespace collapsed onto one line."""
    return re.sub(r"\s+", " ", sql).strip()


@contextmanager
def trace(engine: Engine) -> Iterator[Trace]:
    """Record every statement run on `engine` inside the block, with the application line that issued it."""
    recorded = Trace()

    def heard(executed: Executed, caller: FrameType) -> None:
        origin = application_frame(caller)
        recorded.statements.append(
            TracedStatement(executed.sql, executed.params, executed.duration_s, executed.executemany, origin)
        )

    with statements_heard(engine, heard):
        yield recorded


# ---------------------------------------------------------------------------------------- EXPLAIN
def explainable(statement: Statement) -> bool:
    """Whether EXPLAIN can show a plan for it (a query or a data change; not BEGIN, SET or DDL)."""
    return bool(re.match(r"\s*(\(?\s*SELECT|WITH|INSERT|UPDATE|DELETE)\b", statement.sql, re.IGNORECASE))


def explain_statement(bind: Engine | Connection, statement: Statement, *, analyze: bool | None = None) -> Plan:
    """EXPLAIN a recorded statement with its own parameters.

    SQLite: EXPLAIN QUERY PLAN. PostgreSQL: EXPLAIN ANALYZE (the statement runs once more, with timings) for
    a query; `analyze` defaults to True for SELECTs only, since ANALYZE of an UPDATE would change the data.
    """
    if not explainable(statement):
        raise CourseError(f"EXPLAIN shows plans of queries and data changes, not of {one_line(statement.sql)!r}.")
    is_query = bool(re.match(r"\s*(\(?\s*SELECT|WITH)\b", statement.sql, re.IGNORECASE))
    if analyze is None:
        analyze = is_query
    if analyze and not is_query:
        raise CourseError("EXPLAIN ANALYZE runs the statement: use it on SELECTs, not on data changes.")
    params = statement.params[0] if statement.executemany and statement.params else statement.params
    return explain_sql(bind, statement.sql, params if params else (), analyze="BUFFERS OFF" if analyze else None)


# ---------------------------------------------------------------------------------------- profiles
_PROFILER_INTERVAL_S = 0.001  # pyinstrument's default: a sample every millisecond

# Where self time is charged, in the order tables and charts list them.
CATEGORIES = (
    "database driver (sqlite3, psycopg)",
    "SQLAlchemy ORM (objects, lazy loads)",
    "SQLAlchemy Core (SQL, execution, rows)",
    "JSON",
    "Flask and Werkzeug",
    "the app's code (views, hooks)",
    "Python (builtins, standard library)",
    "other",
)
_FLASK = ("/flask/", "/werkzeug/", "/flask_caching/", "/cachelib/", "/itsdangerous/", "/blinker/", "/jinja2/")
_PROFILERS = ("/pyinstrument/", "_lsprof", "/cProfile.py", "/profile.py")


# The C types of Python's sqlite3 module: pyinstrument names their methods 'Cursor.execute', without the module.
_DRIVER_BUILTINS = re.compile(r"^(Cursor|Connection)\.\w+$|sqlite3\.")


def _builtin(filename: str) -> bool:
    """A function written in C: cProfile files it under '~', pyinstrument under '<built-in>'."""
    return filename in ("~", "<built-in>")


def category_of(filename: str, function: str, caller: tuple[str, str] | None = None) -> str:
    """The category of a profiled function, from its file; a C function counts as its caller's code.

    Python's `len`, `getattr` or a dict method called by SQLAlchemy's ORM are part of the ORM's cost; only the
    database driver's own C methods (sqlite3's cursor) count as the driver.
    """
    if _builtin(filename):
        if _DRIVER_BUILTINS.search(function) or "psycopg" in function:
            return CATEGORIES[0]
        if caller is not None and not _builtin(caller[0]):
            return category_of(*caller)
        return CATEGORIES[6]
    if "psycopg" in filename or "/sqlite3/" in filename:
        return CATEGORIES[0]
    if "/sqlalchemy/orm/" in filename:
        return CATEGORIES[1]
    if "sqlalchemy" in filename:  # the package, and the <sqlalchemy generated ...> wrappers
        return CATEGORIES[2]
    if "/json/" in filename:  # the standard library's json and Flask's JSON provider
        return CATEGORIES[3]
    if any(part in filename for part in _FLASK):
        return CATEGORIES[4]
    if filename.startswith(_SHOP) or is_application_file(filename):
        return CATEGORIES[5]
    if filename.startswith("<frozen") or is_library_file(filename):
        return CATEGORIES[6]
    return CATEGORIES[7]


# (filename, function, seconds of self time, the caller's (filename, function) or None)
_SelfTime = tuple[str, str, float, tuple[str, str] | None]


def _self_times_cprofile(profile: Any) -> Iterator[_SelfTime]:
    stats = profile if isinstance(profile, pstats.Stats) else pstats.Stats(profile)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, tottime, _ct, callers) in entries.items():
        if any(p in f"{filename} {function}" for p in _PROFILERS):
            continue
        if not _builtin(filename) or not callers:
            yield filename, function, tottime, None
            continue
        # cProfile keeps, per caller, the time spent in this function when called from there.
        for (caller_file, _caller_line, caller_function), timing in callers.items():
            yield filename, function, timing[2], (caller_file, caller_function)


def _self_times_pyinstrument(session: Any) -> Iterator[_SelfTime]:
    stack: list[tuple[Any, tuple[str, str] | None]] = [(session.root_frame(), None)]
    while stack:
        frame, caller = stack.pop()
        if frame is None or frame.is_synthetic:
            continue
        filename = frame.file_path or ""
        stack.extend((child, (filename, frame.function or "")) for child in frame.children)
        if not any(p in filename for p in _PROFILERS):
            yield filename, frame.function or "", frame.total_self_time, caller


def time_by_category(profile: Any) -> pd.Series:
    """Self time in ms per category, from a cProfile.Profile / pstats.Stats or a pyinstrument Session."""
    import pandas as pd  # deferred: pandas is heavy; only the tables need it

    times = dict.fromkeys(CATEGORIES, 0.0)
    rows: Iterable[_SelfTime] = (
        _self_times_pyinstrument(profile) if hasattr(profile, "root_frame") else _self_times_cprofile(profile)
    )
    for filename, function, seconds, caller in rows:
        times[category_of(filename, function, caller)] += seconds * 1000
    return pd.Series(times, name="ms")


# ---------------------------------------------------------------------------------------- PostgreSQL's log
@dataclass(frozen=True)
class LogEntry:
    """One message of PostgreSQL's log: its time, backend pid, level and text (continuation lines joined)."""

    at: str
    pid: int
    level: str
    message: str


# PostgreSQL's default log_line_prefix is '%m [%p] ': '2026-11-28 06:23:46.422 UTC [17316] LOG:  ...'
_ENTRY = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+) \[(\d+)\] ([A-Z]+):  (.*)$")


def log_size(path: Path | None = None) -> int:
    """The log's current size: pass it as `offset` to `read_postgres_log` to read only what comes after."""
    path = path or postgres_log_path()
    return path.stat().st_size if path.exists() else 0


def read_postgres_log(
    offset: int = 0, *, pids: Iterable[int] | None = None, path: Path | None = None, settle_s: float = 2.0
) -> list[LogEntry]:
    """The log's entries after byte `offset`, of the backends `pids` only (other notebooks share the server).

    The server writes its log a moment after it answers: the file is read once it has stopped growing.
    """
    path = path or postgres_log_path()
    if not path.exists():
        raise CourseError(
            f"No PostgreSQL log at {path}: this reads the course's own server (COURSE_BACKEND=postgres "
            "without DATABASE_URL)."
        )
    deadline, size = time.monotonic() + settle_s, -1
    while size != (size := path.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    with path.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    wanted = set(pids) if pids is not None else None
    entries: list[LogEntry] = []
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match:
            at, pid, level, message = match.groups()
            entries.append(LogEntry(at, int(pid), level, message))
        elif entries and line.startswith("\t"):  # a statement's further lines are indented with a tab
            last = entries[-1]
            entries[-1] = LogEntry(last.at, last.pid, last.level, last.message + "\n" + line[1:])
    return [e for e in entries if wanted is None or e.pid in wanted]


_DURATION = re.compile(r"^duration: ([\d.]+) ms  (statement|parse|bind|execute)( [^:]*)?: (.*)$", re.DOTALL)


def statement_entries(entries: list[LogEntry]) -> pd.DataFrame:
    """The slow-statement lines of a log (`log_min_duration_statement`): ms, phase, statement, parameters.

    psycopg sends queries with the extended protocol, so PostgreSQL times their parse, bind and execute
    steps separately; statements without parameters (BEGIN, SET) come as one 'statement' step.
    """
    import pandas as pd  # deferred: pandas is heavy; only the tables need it

    rows: list[dict[str, Any]] = []
    for entry in entries:
        if entry.level == "DETAIL" and rows and rows[-1]["pid"] == entry.pid:
            rows[-1]["parameters"] = entry.message.removeprefix("Parameters: ")
            continue
        match = _DURATION.match(entry.message) if entry.level == "LOG" else None
        if match:
            ms, phase, _name, sql = match.groups()
            rows.append(
                {
                    "duration_ms": float(ms),
                    "phase": phase,
                    "sql": one_line(sql),
                    "parameters": "",
                    "pid": entry.pid,
                }
            )
    return pd.DataFrame(rows, columns=["duration_ms", "phase", "sql", "parameters", "pid"])


# ---------------------------------------------------------------------------------------- one view by line
def _find_frame(frame: Any, function: str, file_end: str) -> Any:
    """The first frame of pyinstrument's call tree running `function` from a file ending in `file_end`."""
    if frame.function == function and (frame.file_path or "").endswith(file_end):
        return frame
    for child in frame.children:
        found = _find_frame(child, function, file_end)
        if found is not None:
            return found
    return None


def time_by_line(session: Any, function: str, file_end: str) -> tuple[float, pd.DataFrame]:
    """One function's time in ms, and its time by line (slowest first), from a pyinstrument Session.

    pyinstrument notes, for each sample, the line each function on the stack was on: its frames carry that
    time as attributes `l<line>`.
    """
    import pandas as pd  # deferred: pandas is heavy; only the tables need it

    view = _find_frame(session.root_frame(), function, file_end)
    if view is None:
        raise CourseError(f"The profile has no call of {function} from a file ending in {file_end}.")
    by_line = sorted(
        ((int(key[1:]), seconds) for key, seconds in view.attributes.items() if key.startswith("l")),
        key=lambda item: -item[1],
    )
    lines = pd.DataFrame(
        {
            "line": [f"{short_path(view.file_path)}:{number}" for number, _ in by_line],
            "code": [linecache.getline(view.file_path, number).strip() for number, _ in by_line],
            "time_ms": [seconds * 1000 for _, seconds in by_line],
            "share of the view": [f"{seconds / view.time:.0%}" for _, seconds in by_line],
        }
    )
    return view.time * 1000, lines


# ---------------------------------------------------------------------------------------- a test file, run
@dataclass(frozen=True)
class PytestRun:
    """What pytest said of a test file: its summary line, and each test's outcome ('passed' or the failure)."""

    summary: str
    outcomes: dict[str, str]


def _outcome(case: ElementTree.Element) -> str:
    """'passed', or the failure's message (pytest's 'E   ' lines)."""
    failure = case.find("failure")
    if failure is None:
        return "passed"
    message = [line[1:] for line in (failure.text or "").splitlines() if line.startswith("E ")]
    return textwrap.dedent("\n".join(message))


def run_test_file(source: str, *, env: Mapping[str, str], timeout_s: float = 300) -> PytestRun:
    """Run `source` as a test file with pytest, in a folder and a process of their own, as CI would.

    `env` is added to this process's environment (the test reads its settings from there).
    """
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "test_file.py").write_text(source)
        (Path(folder) / "pytest.ini").write_text("[pytest]\n")  # this folder's own configuration
        command = [sys.executable, "-m", "pytest", "test_file.py", "-q", "--color=no", "-p", "no:cacheprovider"]
        run = subprocess.run(
            [*command, "--junitxml=report.xml"],
            cwd=folder,
            # NO_COLOR: plain text in the report (Jupyter's kernel asks programs for colour)
            env=os.environ | dict(env) | {"NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        report = ElementTree.parse(Path(folder) / "report.xml")
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr.strip()
    return PytestRun(summary, {str(case.get("name")): _outcome(case) for case in report.iter("testcase")})


# ---------------------------------------------------------------------------------------- the lesson's requests
def report_days(orders: int) -> int:
    """The sales report's window in days in the lessons: 3 at `small` (200,000 orders), up to 7 on smaller data and
    down to 1 on larger, so that the baseline report stays quick to ask."""
    return max(1, min(7, round(3 * 200_000 / orders)))


def lesson_requests(rows: Mapping[str, int]) -> dict[str, str]:
    """The four endpoints lesson 09 measures; larger datasets get smaller pages and windows, so that every
    request stays quick at every size."""
    line_rows = rows["order_lines"]
    per_page = 20 if line_rows < 100_000 else 10 if line_rows < 1_000_000 else 5
    return {
        "customer page": "/customers/1",
        "order list": f"/orders?page=1&per_page={per_page}",
        "search": "/search?city=Lisbon&name=an&limit=20",
        "sales report": f"/reports/sales?days={report_days(rows['orders'])}",
    }


# ---------------------------------------------------------------------------------------- the slow-query logs
def slow_logger(name: str = "shop.slow_sql") -> logging.Logger:
    """A logger whose WARNING lines appear under the cell, with one handler however often the cell runs."""
    log = logging.getLogger(name)
    log.setLevel(logging.WARNING)
    log.propagate = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log.handlers[:] = [handler]
    return log


def server_slow_log(pg: Course, threshold_ms: float, urls: Sequence[str]) -> tuple[list[Any], pd.DataFrame]:
    """Send `urls` to an app on the course's PostgreSQL whose sessions log statements slower than `threshold_ms`.

    Each new connection of that app runs `SET log_min_duration_statement = <threshold>` (a session setting, so
    other notebooks sharing the server are not affected, and it ends with the session). Returns the responses
    and the server log's entries for that app's sessions only, the SET itself left out.
    """
    app = pg.app()
    engine = app.extensions["engine"]
    backend_pids: set[int] = set()

    @event.listens_for(engine, "connect")
    def log_slow_statements(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.autocommit = True  # a session setting, outside any transaction
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET log_min_duration_statement = {int(threshold_ms)}")
        dbapi_connection.autocommit = False
        backend_pids.add(dbapi_connection.info.backend_pid)  # the server process serving this session

    start = log_size()
    client = app.test_client()
    responses = [client.get(url) for url in urls]
    engine.dispose()  # close the sessions: the setting lived in them
    entries = statement_entries(read_postgres_log(start, pids=backend_pids))
    return responses, entries[~entries["sql"].str.startswith("SET log_min_duration_statement")]


@dataclass(frozen=True)
class AutoExplain:
    """Whether the course's PostgreSQL can `LOAD 'auto_explain'` into a session, and the plans it logged."""

    available: bool
    reason: str  # the server's answer to LOAD when it cannot
    plans: pd.DataFrame | None  # duration_ms, query, plan: one row per statement it explained


def auto_explain(pg: Course, url: str, *, threshold_ms: float = 0) -> AutoExplain:
    """Try `LOAD 'auto_explain'` on the course's PostgreSQL; where it loads, log the plan of every statement of
    `url` slower than `threshold_ms` (with `log_analyze`: actual times and rows) and read the plans back.

    A superuser can LOAD it into one session, no `shared_preload_libraries` and no restart, but only when the
    server's installation ships the module: PostgreSQL builds and distributions differ.
    """
    engine = make_engine(pg.url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("LOAD 'auto_explain'")
    except DBAPIError as exc:
        return AutoExplain(False, str(exc.orig).strip().splitlines()[0], None)
    finally:
        engine.dispose()
    app = pg.app()
    engine = app.extensions["engine"]
    backend_pids: set[int] = set()

    @event.listens_for(engine, "connect")
    def explain_slow_statements(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            cursor.execute(f"SET auto_explain.log_min_duration = {int(threshold_ms)}")
            cursor.execute("SET auto_explain.log_analyze = on")
        dbapi_connection.autocommit = False
        backend_pids.add(dbapi_connection.info.backend_pid)

    start = log_size()
    app.test_client().get(url)
    engine.dispose()
    return AutoExplain(True, "", plan_entries(read_postgres_log(start, pids=backend_pids)))


_PLAN = re.compile(r"^duration: ([\d.]+) ms  plan:\n(.*)$", re.DOTALL)
_PLAN_NODE = re.compile(r"\((cost|actual time)=")  # a plan node's line: 'Seq Scan on orders  (cost=…) (actual…'


def plan_entries(entries: list[LogEntry]) -> pd.DataFrame:
    """The plans `auto_explain` logged: duration, the query text and the plan below it."""
    import pandas as pd  # deferred: pandas is heavy; only the tables need it

    rows = []
    for entry in entries:
        match = _PLAN.match(entry.message) if entry.level == "LOG" else None
        if match:
            ms, body = match.groups()
            lines = body.removeprefix("Query Text: ").splitlines()
            # The query text runs over as many lines as the client sent; the plan starts at its first node.
            start = next((i for i, line in enumerate(lines) if _PLAN_NODE.search(line)), len(lines))
            query, plan = one_line(" ".join(lines[:start])), "\n".join(lines[start:])
            rows.append({"duration_ms": float(ms), "query": query, "plan": plan})
    return pd.DataFrame(rows, columns=["duration_ms", "query", "plan"])


# ---------------------------------------------------------------------------------------- how many samples
def _pyinstrument(call: Callable[[], Any], times: int) -> Any:
    from pyinstrument import Profiler  # deferred: the profilers load only when a profile is taken

    profiler = Profiler(interval=_PROFILER_INTERVAL_S, async_mode="disabled")
    with profiler:
        for _ in range(times):
            call()
    return profiler.last_session


def _cprofile(call: Callable[[], Any], times: int) -> pstats.Stats:
    import cProfile  # deferred: see _pyinstrument

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(times):
        call()
    profile.disable()
    return pstats.Stats(profile)


def _shares(profile: Any) -> pd.Series:
    """Each category's share (%) of a profile's self time; all 0 for a profile that caught no sample."""
    split = time_by_category(profile)
    total = split.sum()
    return split / total * 100 if total > 0 else split * 0


@dataclass
class ProfileRuns:
    """pyinstrument and cProfile on one request (pyinstrument several times) and on a loop of `loop` requests."""

    samples_one: list[int]  # pyinstrument's samples in each profile of one request
    one: pd.DataFrame  # shares (%) per category: a column per profile of one request
    loop: int  # requests in the loop
    samples_loop: int
    loop_shares: pd.DataFrame  # shares (%) per category: pyinstrument and cProfile over the loop
    cprofile_one: pd.Series

    def table(self) -> pd.DataFrame:
        """Per category: pyinstrument's range over the profiles of one request, then the loop's shares."""
        import pandas as pd  # deferred: pandas is heavy; only the tables need it

        low, high = self.one.min(axis=1), self.one.max(axis=1)
        table = pd.DataFrame(
            {
                f"pyinstrument, 1 request ({len(self.samples_one)} profiles)": [
                    f"{a:.0f}–{b:.0f}%" for a, b in zip(low, high, strict=True)
                ],
                "cProfile, 1 request": self.cprofile_one.map("{:.0f}%".format),
                f"pyinstrument, {self.loop} requests": self.loop_shares["pyinstrument"].map("{:.0f}%".format),
                f"cProfile, {self.loop} requests": self.loop_shares["cProfile"].map("{:.0f}%".format),
            },
            index=self.one.index,
        )
        shown = (self.one.max(axis=1) >= 1) | (self.loop_shares.max(axis=1) >= 1)
        return table[shown]

    def widest(self) -> tuple[str, float, float]:
        """The category whose share moved most between profiles of one request: its name, lowest and highest."""
        spread = self.one.max(axis=1) - self.one.min(axis=1)
        name = str(spread.idxmax())
        return name, float(self.one.loc[name].min()), float(self.one.loc[name].max())


def profile_runs(call: Callable[[], Any], *, profiles: int = 5, loop_s: float = 1.0) -> ProfileRuns:
    """Profile `call` (one request) `profiles` times with pyinstrument and once with cProfile, then a loop of
    requests long enough for about `loop_s` seconds of samples with each."""
    import pandas as pd  # deferred: pandas is heavy; only the tables need it

    call()  # warm-up
    started = time.perf_counter()
    call()
    one_s = time.perf_counter() - started
    sessions = [_pyinstrument(call, 1) for _ in range(profiles)]
    loop = max(5, min(200, round(loop_s / max(one_s, 1e-4))))
    looped = _pyinstrument(call, loop)
    return ProfileRuns(
        samples_one=[session.sample_count for session in sessions],
        one=pd.DataFrame({i: _shares(session) for i, session in enumerate(sessions)}),
        loop=loop,
        samples_loop=looped.sample_count,
        loop_shares=pd.DataFrame({"pyinstrument": _shares(looped), "cProfile": _shares(_cprofile(call, loop))}),
        cprofile_one=_shares(_cprofile(call, 1)),
    )


# ---------------------------------------------------------------------------------------- what watching costs
def overheads_said(watching: Comparison, base: str, again: str, *, limit: float = 0.10) -> str:
    """Each instrument's overhead beside the noise of this run. `again` is `base` raced against itself: the two
    medians' mean is the reference, and their distance from each other (as a share of it) the bound below which
    an overhead cannot be told from noise. An instrument 'costs under `limit`' only when its overhead plus that
    bound stays below it, and nothing is claimed when the noise alone exceeds it."""
    first, second = watching[base].median_s, watching[again].median_s
    reference = (first + second) / 2
    noise = abs(first - second) / reference
    parts, light = [], []
    for m in watching.measurements:
        if m.variant in (base, again):
            continue
        overhead = m.median_s / reference - 1
        within = " (within the noise)" if abs(overhead) <= noise else ""
        parts.append(f"{m.variant} {overhead:+.0%}{within}")
        if overhead + noise < limit:
            light.append(m.variant)
    verdict = (
        f"Under {limit:.0%} with the noise added: {', '.join(light) or 'none'}."
        if noise < limit
        else f"Under {limit:.0%}: this run cannot tell, its noise ({noise:.0%}) is larger than that."
    )
    return (
        f"The same request raced against itself ({base!r} and {again!r}) differed by {noise:.1%}: this run cannot "
        f"tell apart overheads smaller than that. Overheads, against the mean of the two: {', '.join(parts)}.\n"
        f"{verdict}"
    )


# ---------------------------------------------------------------------------------------- SQLAlchemy's tools
@dataclass(frozen=True)
class SQLAlchemyTools:
    """What the installed SQLAlchemy offers for watching queries: its cursor events, `echo`, and any module
    named for profiling (its own test suite's)."""

    version: str
    cursor_events: tuple[str, ...]
    echo: bool
    profiling_modules: tuple[str, ...]

    def said(self) -> str:
        modules = ", ".join(self.profiling_modules) or "none"
        return (
            f"SQLAlchemy {self.version} has no profiler for applications: it has the cursor events "
            f"{' and '.join(self.cursor_events)} (timers and counters are built on them), echo=True, and the "
            f"FAQ's cProfile recipe; its modules named for profiling: {modules} (for its own test suite)."
        )


def sqlalchemy_tools() -> SQLAlchemyTools:
    """Look in the installed SQLAlchemy for what it offers to watch queries."""
    import sqlalchemy  # deferred: read when asked
    from sqlalchemy.engine.events import ConnectionEvents  # deferred: read when asked, like the package itself

    root = Path(sqlalchemy.__file__).parent
    modules = sorted(
        "sqlalchemy." + ".".join(path.relative_to(root).with_suffix("").parts)
        for path in root.rglob("*.py")
        if "profil" in path.stem
    )
    events = tuple(
        name for name in ("before_cursor_execute", "after_cursor_execute") if hasattr(ConnectionEvents, name)
    )
    return SQLAlchemyTools(sqlalchemy.__version__, events, hasattr(Engine, "echo"), tuple(modules))
