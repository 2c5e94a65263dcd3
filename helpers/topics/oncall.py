"""On call for an app you have never seen: the library, with problems planted from a seed, graded by objectives.

    shift = oncall.start(course, seed=1234)  # the seed is printed; the same seed plants the same incident
    oncall.status()                          # which objectives fail on which endpoint (not why)
    oncall.show_code("GET /feed")            # the app's code, as a newcomer reads it
    oncall.replace(my_view)                  # your version of an endpoint (a view named like the endpoint)
    oncall.create_index(Index(...))          # an index on the on-call copy of the database
    oncall.check()                           # passes when every objective holds
    oncall.reveal()                          # then: what was planted, which lesson it varies, how long you took
    oncall.hint()                            # what to look at, then which tool, then where: never the fix

The app runs on a private copy of the library dataset (`library-<size>.oncall.sqlite`, `library_<size>__oncall`);
`oncall.close()` removes it. The p95 bounds are set in `start()` from the specified views timed on this machine.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import inspect
import logging
import os
import random
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any

from flask import Flask
from sqlalchemy import Engine, Index, event, text
from sqlalchemy import inspect as inspect_db
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from ..config import data_dir
from ..course import Course, cache_config
from ..data import LIBRARY, copy_dataset, dataset_url, drop_copy, ensure_dataset
from ..data.library import LibrarySize, library_size
from ..db import make_engine
from ..errors import CourseError
from ..lessons import LESSONS
from ..library import spec
from ..library.app import RECENT_ERRORS, create_app
from ..library.incidents import POOL, Incident
from ..library.models import deployed_indexes
from ..measure.display import say
from ..measure.display import show_code as show_python
from ..measure.harness import first_difference
from . import slo
from .slo import ENDPOINTS, OBJECTIVES, Endpoint

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AppLog",
    "Reference",
    "Shift",
    "Verdict",
    "check",
    "close",
    "create_index",
    "draw",
    "hint",
    "reference_requested",
    "replace",
    "reveal",
    "show_code",
    "side_by_side",
    "start",
    "status",
]

_MAX_SEED = 2**31 - 1
_REFERENCE_ENV = "COURSE_ONCALL_APPLY_REFERENCE"  # set by the course's notebook runner: apply the reference fix
_PLANTED = (5, 6)
_OPENED = "oncall.opened_connections"  # app.extensions key: every DBAPI connection the app's engine opened


# ---------------------------------------------------------------------------------------------- the draw
def _seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise CourseError(
            f"The seed must be a whole number from 0 to {_MAX_SEED} (the one your instructor gave you), "
            f"not {seed!r}."
        )
    return seed


def draw(seed: int) -> tuple[Incident, ...]:
    """The incidents a seed plants: five or six from the pool, on distinct endpoints, in the pool's order."""
    rng = random.Random(_seed(seed))
    order = list(POOL)
    rng.shuffle(order)
    wanted = rng.choice(_PLANTED)
    chosen: list[Incident] = []
    endpoints: set[str] = set()
    for incident in order:
        if incident.endpoint not in endpoints and len(chosen) < wanted:
            chosen.append(incident)
            endpoints.add(incident.endpoint)
    return tuple(sorted(chosen, key=POOL.index))


def _endpoint(name_or_route: str) -> Endpoint:
    """An endpoint by its view's name (`book_list`) or its route (`GET /books`); one line if there is none."""
    for e in ENDPOINTS:
        if name_or_route in (e.name, e.route, e.rule):
            return e
    routes = ", ".join(e.route for e in ENDPOINTS)
    raise CourseError(f"The library has no endpoint {name_or_route!r}: choose one of {routes}.")


# ---------------------------------------------------------------------------------------------- the code
_HEADER = '''"""The library's views as they run in production today: read them as a newcomer would."""

from collections import Counter
from datetime import timedelta
from typing import Any

from flask import abort, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session, joinedload

from helpers.library.caching import cache
from helpers.library.models import GENRES, TODAY, Author, Book, Loan, Member
from helpers.library.params import int_arg, member_id
from helpers.shop.db import get_engine, get_session

PAGE = 50  # books per catalogue page
FEED_PAGE = 100  # loans per page of the sync feed
'''


def _names(code: CodeType) -> list[str]:
    """The global names a function's code uses, its comprehensions' and lambdas' included."""
    nested = [name for const in code.co_consts if isinstance(const, CodeType) for name in _names(const)]
    return [*code.co_names, *nested]


def _helpers_of(function: Callable[..., Any], seen: dict[str, Callable[..., Any]]) -> None:
    """The library's own functions that `function` calls (its helpers), depth first, each once."""
    original = inspect.unwrap(function)
    for name in _names(original.__code__):
        found = original.__globals__.get(name)
        if (
            inspect.isfunction(found)
            and found.__module__.startswith("helpers.library.")
            and found.__module__ != "helpers.library.params"
            and name not in seen
        ):
            _helpers_of(found, seen)
            seen[name] = found


def _deployed_sources(incidents: tuple[Incident, ...]) -> dict[str, str]:
    """Each endpoint's code as deployed: its helpers, then its view (with the decorators it shipped with)."""
    planted = {i.endpoint: i.view for i in incidents if i.view is not None}
    sources = {}
    for _method, _rule, name, view in spec.ROUTES:
        shipped = planted.get(name, view)
        used: dict[str, Callable[..., Any]] = {}
        _helpers_of(shipped, used)
        parts = [inspect.getsource(inspect.unwrap(f)) for f in [*used.values(), shipped]]
        sources[name] = "\n\n".join(part.rstrip() + "\n" for part in parts)
    return sources


def _load_module(path: Any, name: str) -> ModuleType:
    loader_spec = importlib.util.spec_from_file_location(name, path)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    loader_spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Verdict:
    """One objective on one endpoint: held or not (None: does not apply), the figure shown, and what failed."""

    held: bool | None
    shown: str = "—"
    failed: str = ""

    def cell(self) -> str:
        return "—" if self.held is None else ("✓ " if self.held else "✗ ") + self.shown


@dataclass
class Reference:
    """The specified views on this machine and data: the answers, the db work, and the p95 under the load."""

    answers: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    work: dict[str, tuple[int, int]] = field(default_factory=dict)
    p95_ms: dict[str, float] = field(default_factory=dict)


class AppLog(logging.Handler):
    """The library's log, as the on-call engineer reads it: the last errors its apps logged (Flask logs every
    exception a view raised, with its traceback), kept here rather than printed under the cell that ran them."""

    def __init__(self) -> None:
        # At every level: Flask adds its own handler (to stderr) unless one handles the logger's effective level.
        super().__init__()
        self.records: deque[logging.LogRecord] = deque(maxlen=200)

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.records.append(record)

    def attach(self) -> None:
        logger = logging.getLogger("library")  # every library app logs there (Flask names the logger after it)
        logger.handlers[:] = [self]
        logger.propagate = False


# ---------------------------------------------------------------------------------------------- the shift
class Shift:
    """One on-call shift: the planted app on its own copy of the library, its objectives, your fixes."""

    def __init__(self, course: Course, seed: int, *, timing: bool = True, copy: str = "oncall") -> None:
        self.course, self.seed, self.timing = course, _seed(seed), timing
        self.incidents = draw(seed)
        self.size: LibrarySize = library_size(course.size)
        source = dataset_url(LIBRARY, course.settings)
        ensure_dataset(course.size, url=source, dataset=LIBRARY)
        self.url: URL = copy_dataset(course.size, copy, source=source, dataset=LIBRARY)
        self.engine: Engine = make_engine(self.url)
        self._apps: list[Flask] = []
        self.sources = _deployed_sources(self.incidents)
        # The deployed code as a file of its own, outside helpers/: read as a newcomer reads a codebase, and
        # what the profiler's trace names as the application code that issued a statement.
        name = "library_views" if copy == "oncall" else f"library_views_{copy}"
        path = data_dir() / "oncall" / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_HEADER + "\n\n" + "\n\n".join(self.sources.values()))
        self.code_path = path
        module = _load_module(path, name)
        self.deployed: dict[str, Callable[..., Any]] = {name: getattr(module, name) for *_, name, _ in spec.ROUTES}
        self.views = dict(self.deployed)
        self.replaced: list[str] = []
        self.indexes_created: list[str] = []
        self.last: dict[str, dict[str, Verdict]] = {}
        self.hints_given: dict[tuple[str, str], int] = {}
        self.solved_after: timedelta | None = None
        self.revealed = False
        self.log = AppLog()
        self.log.attach()
        # The specified app with every deployed index: the reference every objective is judged against.
        for index in deployed_indexes():
            index.create(self.engine)
        self._analyze()
        self.reference = self._measure_reference()
        self._plant_indexes()
        self.started = time.monotonic()

    # -------------------------------------------------------------------------------- the database
    def _analyze(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("ANALYZE"))

    def _plant_indexes(self) -> None:
        for incident in self.incidents:
            if incident.missing_index:
                with self.engine.begin() as conn:
                    conn.execute(text(f"DROP INDEX {incident.missing_index}"))
            if incident.instead:
                incident.instead().create(self.engine)
        self._analyze()

    def errors(self, last: int = 10) -> pd.DataFrame:
        """The app's error log: the last exceptions its views raised (when, where, what), newest first."""
        import pandas as pd  # deferred: pandas only when a table is shown

        rows = [
            {
                "when": time.strftime("%H:%M:%S", time.localtime(r.created)),
                "message": r.getMessage(),
                "exception": f"{r.exc_info[0].__name__}: {r.exc_info[1]}"[:160]
                if r.exc_info and r.exc_info[0]
                else "",
            }
            for r in reversed(self.log.records)
        ]
        return pd.DataFrame(rows[:last], columns=["when", "message", "exception"])

    def indexes(self) -> pd.DataFrame:
        """The secondary indexes the on-call database has now, table by table."""
        import pandas as pd  # deferred: pandas only when a table is shown

        insp = inspect_db(self.engine)
        rows = [
            {"table": table, "index": ix["name"], "columns": ", ".join(c for c in ix["column_names"] if c)}
            for table in LIBRARY.tables
            for ix in insp.get_indexes(table)
        ]
        return pd.DataFrame(rows)

    def create_index(self, index: Index) -> None:
        """Create `index` on the on-call database (declare it on the models' columns: `Index(name, Loan.x)`)."""
        if not isinstance(index, Index):
            raise CourseError("create_index takes a sqlalchemy Index, like Index('ix_loans_x', Loan.x).")
        index.create(self.engine, checkfirst=True)
        self._analyze()
        self.indexes_created.append(str(index.name))
        print(f"Created {index.name} on {index.table.name if index.table is not None else '?'}.")

    # -------------------------------------------------------------------------------- the app
    def app(self, views: dict[str, Callable[..., Any]] | None = None, **config: Any) -> Flask:
        """The library app as it runs now (the deployed views with your replacements), with an empty cache."""
        prefix = f"oncall-{secrets.token_hex(4)}:"  # on a shared Redis, a cache that starts empty
        settings = {"DATABASE_URL": self.url, **cache_config(self.course.settings), "CACHE_KEY_PREFIX": prefix}
        app = create_app({**settings, **config}, views=spec.blueprint(views or self.views))
        # A planted fault may leak sessions; their connections are held here until the app is closed, so none is
        # ever left to the garbage collector (which would drop it open, mid-shift, with a ResourceWarning).
        opened: list[Any] = []
        event.listen(
            app.extensions["engine"], "connect", lambda dbapi_connection, _record: opened.append(dbapi_connection)
        )
        app.extensions[_OPENED] = opened
        self._apps.append(app)
        return app

    def _close_app(self, app: Flask) -> None:
        # Errors the app kept (their tracebacks keep the sessions of the frames they passed through): close
        # those sessions, then let the errors go, then the engine.
        for exc in list(app.extensions.get(RECENT_ERRORS, ())):
            tb = exc.__traceback__
            while tb is not None:
                for value in list(tb.tb_frame.f_locals.values()):
                    if isinstance(value, Session):
                        value.close()
                tb = tb.tb_next
        app.extensions.get(RECENT_ERRORS, []).clear()
        store = app.extensions.get("cache", {})
        for backend in store.values():
            if backend.__class__.__name__ == "RedisCache":
                backend.clear()
        app.extensions["engine"].dispose()
        gc.collect()
        for dbapi_connection in app.extensions.pop(_OPENED, ()):
            with contextlib.suppress(Exception):  # already closed by the pool, or its server gone: nothing to free
                dbapi_connection.close()

    def _fresh(self, views: dict[str, Callable[..., Any]] | None = None) -> Flask:
        return self.app(views)

    def _done(self, app: Flask) -> None:
        self._close_app(app)
        if app in self._apps:
            self._apps.remove(app)

    def replace(self, view: Callable[..., Any], endpoint: str | None = None) -> None:
        """Serve `view` for an endpoint: named like it (`def book_list(): ...`), or `endpoint="GET /feed"`."""
        if not callable(view):
            raise CourseError("replace() takes your view function, like replace(book_list).")
        target = _endpoint(endpoint or view.__name__)
        self.views[target.name] = view
        if target.name not in self.replaced:
            self.replaced.append(target.name)
        print(f"{target.route} is now served by your {view.__name__}().")

    def apply_reference(self, only: tuple[str, ...] | None = None) -> None:
        """The course's reference fix: the specified views and the deployed indexes (for some endpoints only)."""
        names = {_endpoint(n).name for n in only} if only else {i.endpoint for i in self.incidents}
        views = {name: view for *_, name, view in spec.ROUTES}
        for incident in self.incidents:
            if incident.endpoint not in names:
                continue
            self.views[incident.endpoint] = views[incident.endpoint]
            if incident.missing_index:
                index = next(ix for ix in deployed_indexes() if ix.name == incident.missing_index)
                index.create(self.engine, checkfirst=True)
                self._analyze()

    # -------------------------------------------------------------------------------- measuring
    def _measure_reference(self) -> Reference:
        ref = Reference()
        views = {name: view for *_, name, view in spec.ROUTES}
        for e in ENDPOINTS:
            app = self._fresh(views)
            try:
                ref.answers[e.name] = slo.replies(app, e, e.calls(self.size)).answers
            finally:
                self._done(app)
            if e.method == "GET":
                app = self._fresh(views)
                try:
                    ref.work[e.name] = slo.database_work(app, e, e.calls(self.size))
                finally:
                    self._done(app)
            if self.timing:
                app = self._fresh(views)
                try:
                    ref.p95_ms[e.name] = slo.under_load(app, e, self.size).median_p95_ms
                finally:
                    self._done(app)
        return ref

    def _judge(self, e: Endpoint, timing: bool) -> dict[str, Verdict]:
        verdicts: dict[str, Verdict] = dict.fromkeys(OBJECTIVES, Verdict(None))
        calls = e.calls(self.size)
        app = self._fresh()
        try:
            got = slo.replies(app, e, calls)
        finally:
            self._done(app)
        expected = self.reference.answers[e.name]
        differ = [i for i, (a, b) in enumerate(zip(expected, got.answers, strict=True)) if a != b]
        failed = ""
        if differ:
            i = differ[0]
            (want_status, want), (status, answer) = expected[i], got.answers[i]
            why = (
                f"answered {status}, the specification {want_status}"
                if status != want_status
                else first_difference(want, answer, "answer")
            )
            failed = f"{calls[i].label()}: {why}"
        verdicts["answers"] = Verdict(not differ, f"{len(calls) - len(differ)}/{len(calls)}", failed)
        if e.private:
            leaks = [
                c.label()
                for c, (status, answer) in zip(calls, got.answers, strict=True)
                if status == 200 and isinstance(answer, dict) and answer.get("member") != c.member
            ]
            leaks_shown = "none" if not leaks else f"{len(leaks)} of {len(calls)}"
            verdicts["privacy"] = Verdict(
                not leaks, leaks_shown, f"{leaks[0]} got another member's page" if leaks else ""
            )
        verdicts["statements"] = Verdict(
            got.statements <= e.statements,
            f"{got.statements} {'≤' if got.statements <= e.statements else '>'} {e.statements}",
        )
        if e.commits is not None:
            ok = got.commits <= e.commits
            verdicts["commits"] = Verdict(ok, f"{got.commits} {'≤' if ok else '>'} {e.commits}")
        if e.method == "GET":
            app = self._fresh()
            try:
                units, sent = slo.database_work(app, e, calls)
            finally:
                self._done(app)
            ref_units, ref_sent = self.reference.work[e.name]
            ok = units <= slo.WORK_FACTOR * ref_units + slo.WORK_SLACK and sent <= (
                slo.WORK_FACTOR * ref_sent + slo.BYTES_SLACK
            )
            verdicts["db work"] = Verdict(
                ok, f"{units / max(ref_units, 1):.1f}× work, {sent / max(ref_sent, 1):.1f}× bytes"
            )
        if timing:
            verdicts.update(self._timed(e))
        return verdicts

    def _timed(self, e: Endpoint) -> dict[str, Verdict]:
        app = self._fresh()
        try:
            load = slo.under_load(app, e, self.size)
        finally:
            self._done(app)
        bound = slo.p95_bound_ms(self.reference.p95_ms[e.name])
        p95 = load.median_p95_ms
        bad = {s: n for s, n in load.statuses.items() if s >= 500}
        return {
            "errors": Verdict(
                load.failed == 0,
                f"{load.failed} of {load.requests}",
                ", ".join(f"{n}× {s}" for s, n in sorted(bad.items())) if bad else "",
            ),
            "p95": Verdict(p95 <= bound, f"{p95:.1f} {'≤' if p95 <= bound else '>'} {bound:.1f} ms"),
        }

    def evaluate(self, *, timing: bool | None = None) -> dict[str, dict[str, Verdict]]:
        """Every objective on every endpoint (timing: the load test too; by default when the shift times)."""
        timing = self.timing if timing is None else timing
        self.last = {e.name: self._judge(e, timing) for e in ENDPOINTS}
        return self.last

    def table(self, verdicts: dict[str, dict[str, Verdict]] | None = None) -> pd.DataFrame:
        """The objectives table: one row per endpoint, one column per objective."""
        import pandas as pd  # deferred: pandas only when a table is shown

        verdicts = verdicts or self.last
        return pd.DataFrame(
            [{"endpoint": e.route, **{o: verdicts[e.name][o].cell() for o in OBJECTIVES}} for e in ENDPOINTS]
        ).set_index("endpoint")

    def failing(self, verdicts: dict[str, dict[str, Verdict]] | None = None) -> list[tuple[str, str]]:
        """(endpoint, objective) pairs that fail."""
        verdicts = verdicts or self.last
        return [(e, o) for e, row in verdicts.items() for o, v in row.items() if v.held is False]

    # -------------------------------------------------------------------------------- the learner's face
    def status(self) -> pd.DataFrame:
        """Run every objective and show which fail on which endpoint (not why)."""
        from IPython.display import display  # deferred: IPython only in a notebook

        self.evaluate()
        held = sum(v.held is True for row in self.last.values() for v in row.values())
        applies = sum(v.held is not None for row in self.last.values() for v in row.values())
        display(self.table())
        for e, o in self.failing():
            v = self.last[e][o]
            if v.failed:
                print(f"{_endpoint(e).route} · {o}: {v.failed}")
        say(f"{held} of {applies} objectives hold.", "#1a7f37" if held == applies else "#b04a3a")
        return self.table()

    def check(self) -> bool:
        """True when every objective holds (a p95 miss is measured once more before it counts)."""
        verdicts = self.evaluate()
        for e, o in self.failing(verdicts):
            if o in ("p95", "errors") and not [
                x for x in self.failing(verdicts) if x[0] == e and x[1] not in ("p95",)
            ]:
                verdicts[e].update(self._timed(_endpoint(e)))
        failing = self.failing(verdicts)
        if failing:
            where = ", ".join(f"{_endpoint(e).route} · {o}" for e, o in failing)
            say(f"Not yet: {len(failing)} objective(s) fail: {where}.", "#b04a3a")
            return False
        if self.solved_after is None:
            self.solved_after = timedelta(seconds=round(time.monotonic() - self.started))
        say(
            f"Every objective holds: the incident is over (after {self.solved_after}). "
            "oncall.reveal() shows what it was.",
            "#1a7f37",
        )
        return True

    def reveal(self, *, give_up: bool = False) -> pd.DataFrame | None:
        """What was planted, which lesson each is a variant of, and how long you took (after check() passes)."""
        import pandas as pd  # deferred: pandas only when a table is shown

        if self.solved_after is None and not give_up:
            say("reveal() shows the incidents once check() passes (reveal(give_up=True) shows them now).", "#555")
            return None
        titles = {lesson.number: lesson.title for lesson in LESSONS}
        frame = pd.DataFrame(
            [
                {
                    "endpoint": _endpoint(i.endpoint).route,
                    "incident": i.name,
                    "what was planted": i.what,
                    "lesson": f"{i.lesson} {titles.get(i.lesson, '')}".strip(),
                    "caught by": ", ".join(i.catches),
                }
                for i in self.incidents
            ]
        )
        took = self.solved_after or timedelta(seconds=round(time.monotonic() - self.started))
        print(
            f"Seed {self.seed}: {len(self.incidents)} incidents; "
            f"{'solved' if self.solved_after else 'given up'} after {took}."
        )
        self.revealed = True
        return frame

    def hint(self, endpoint: str | None = None, objective: str | None = None) -> str:
        """The next step of the hint ladder for a failing objective: what to look at, which tool, then where."""
        if endpoint is None:
            failing = self.failing()
            if not failing:
                raise CourseError(
                    "Nothing fails in the last status(): run oncall.status() first, or name an endpoint."
                )
            name, objective = (
                failing[0] if objective is None else next((f for f in failing if f[1] == objective), failing[0])
            )
        else:
            name = _endpoint(endpoint).name
            objective = objective or next((o for e, o in self.failing() if e == name), "p95")
        if objective not in OBJECTIVES:
            raise CourseError(f"No objective {objective!r}: choose one of {', '.join(OBJECTIVES)}.")
        level = min(self.hints_given.get((name, objective), 0) + 1, 3)
        self.hints_given[(name, objective)] = level
        route = _endpoint(name).route
        text_ = _HINTS[objective][level - 1].format(route=route)
        print(f"Hint {level} of 3 for {route} · {objective}: {text_}")
        return text_

    def show_code(self, endpoint: str | None = None) -> None:
        """The deployed code of one endpoint (its helpers, its view), or of them all."""
        if endpoint is None:
            show_python(self.code_path.read_text())
            return
        show_python(self.sources[_endpoint(endpoint).name])

    def close(self) -> None:
        """Close every app and engine of the shift and remove its copy of the database."""
        while self._apps:
            self._done(self._apps[-1])
        self.engine.dispose()
        drop_copy(self.url)
        self.code_path.unlink(missing_ok=True)


_HINTS: dict[str, tuple[str, str, str]] = {
    "answers": (
        "Some answers of {route} differ from the specification's. Call it yourself with two different requests "
        "(two query strings, or the same one twice) and compare what comes back.",
        "Use the test client (`client = shift.app().test_client()`), `.get_json()`, and the line status() "
        "printed: "
        "does the difference depend on what was asked, or on what was asked before?",
        "Read the view of {route} with oncall.show_code(): what decides whether it runs at all, and what it "
        "keeps between requests.",
    ),
    "privacy": (
        "A member got a page that is not theirs from {route}. Ask for it as two members, one after the other.",
        "Send `headers={{'X-Member-Id': '1'}}`, then '2', through the test client; list the keys the cache holds "
        "(`app.extensions['cache']`).",
        "Look at what the cache key of {route} is made of, and what identifies the member in the request.",
    ),
    "errors": (
        "Under the load some requests to {route} got a 5xx (a 500 or a 503). Find which requests fail first.",
        "Serve the app with serve_in_thread and watch the pool with PoolWatch while run_load sends requests; read "
        "the body of a failing answer: a 503 says the pool was empty, a 500 names the exception.",
        "Follow each path through the view of {route}, the unhappy ones too (an unknown id, a cache hit): what "
        "does each leave open, or use after its session is gone?",
    ),
    "statements": (
        "{route} runs more statements than its budget. Count them per request (the X-Statements header).",
        "Trace one request (`with trace(shift.engine) as t: client.get(...)`, then t.by_shape()) or the "
        "QueryPanel: which statement shape repeats, and which line issues it?",
        "The repeated statement comes from a line of the view of {route}, or from something it calls (a model's "
        "property, a relationship, a loop): oncall.show_code() and the models.",
    ),
    "commits": (
        "{route} commits more often than its budget allows. Count the commits of one request.",
        "count_commits(shift.engine) around one request through the test client, then read where the view "
        "commits.",
        "Look at the loop in the view of {route}: what happens inside it on each row?",
    ),
    "db work": (
        "The database does much more work for {route} than the specification's version (rows read, or bytes "
        "sent).",
        "Trace a request and EXPLAIN its slowest statement (explain_statement); compare bytes_fetched with what "
        "the response needs.",
        "In the statements of {route}: which columns are selected, which index serves the WHERE and ORDER BY "
        "(oncall.indexes()), and how many rows are read to return the few that are kept?",
    ),
    "p95": (
        "{route} is slower under load than its bound. Time one request, then a few under load.",
        "Profile one request (pyinstrument or cProfile by package), and trace its statements: where does its "
        "time go, in the database or in Python?",
        "The slow part is in the view of {route} or in the statement it runs: compare with what the db work "
        "objective says, and EXPLAIN it.",
    ),
}


# ---------------------------------------------------------------------------------------------- the module's face
_current: list[Shift] = []  # the shift of this kernel (start() closes the one before)


def _shift() -> Shift:
    if not _current:
        raise CourseError("No shift has started: run oncall.start(course, seed=...) first.")
    return _current[-1]


def start(course: Course, seed: int | None = None, *, timing: bool = True) -> Shift:
    """Go on call: copy the library, plant the seed's incidents, time the specified app to set the p95 bounds."""
    seed = secrets.randbelow(10_000) if seed is None else _seed(seed)
    close()
    started = time.perf_counter()
    shift = Shift(course, seed, timing=timing)
    _current.append(shift)
    routes = ", ".join(e.route for e in ENDPOINTS)
    print(
        f"On call for the library (seed {seed}, {course.backend}, {course.size}): {len(ENDPOINTS)} endpoints "
        f"({routes}). The reference was measured in {time.perf_counter() - started:.1f} s."
    )
    return shift


def close() -> None:
    """End the shift: close its apps and remove its copy of the database."""
    while _current:
        _current.pop().close()


def status() -> pd.DataFrame:
    return _shift().status()


def check() -> bool:
    return _shift().check()


def reveal(*, give_up: bool = False) -> pd.DataFrame | None:
    return _shift().reveal(give_up=give_up)


def hint(endpoint: str | None = None, objective: str | None = None) -> str:
    return _shift().hint(endpoint, objective)


def replace(view: Callable[..., Any], endpoint: str | None = None) -> None:
    _shift().replace(view, endpoint)


def create_index(index: Index) -> None:
    _shift().create_index(index)


def show_code(endpoint: str | None = None) -> None:
    _shift().show_code(endpoint)


def side_by_side(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Two objectives tables, each objective's column before beside after."""
    import pandas as pd  # deferred: pandas only when a table is shown

    frame = pd.concat({"before": before, "after": after}, axis=1).swaplevel(axis=1)
    return frame[[(objective, when) for objective in after.columns for when in ("before", "after")]]


def reference_requested() -> bool:
    """Whether the notebook runs in test mode (COURSE_ONCALL_APPLY_REFERENCE=1): the reference fix is applied."""
    return os.environ.get(_REFERENCE_ENV, "") == "1"
