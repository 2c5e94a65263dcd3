"""What the learner builds, kept for the capstone: accepted endpoints and pool settings under data/my_app/.

* `save(views, task)` writes the cell that defined an accepted Blueprint to data/my_app/<lesson>_<endpoint>.py;
* `saved_answers()` lists every lesson's answer per endpoint, `saved_files()` the latest, `load(path)` runs one;
* `compose()` makes one blueprint per endpoint from all its answers (`Composed` says how: the latest lesson's
  view, the cache of the first lesson that cached it, every earlier answer's app-wide hooks), `my_views()` lists
  them and `assemble(fallback)` adds the fallback's views for every route the learner has not written;
* `save_engine_options` / `saved_engine_options` / `my_engine_options`: the pool accepted in lesson 07;
  `my_app(course, fallback)` is the learner's app (composed views, their pool), as the capstone and
  `make app VIEWS=mine` run it.
"""

from __future__ import annotations

import ast
import inspect
import json
import linecache
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FunctionType
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask

from ..config import data_dir
from ..errors import CourseError
from .core import blueprint_views

if TYPE_CHECKING:
    from ..course import Course
    from .app_task import AppTask

__all__ = [
    "Composed",
    "assemble",
    "compose",
    "is_cached",
    "load",
    "my_app",
    "my_app_dir",
    "my_engine_options",
    "my_views",
    "save",
    "save_engine_options",
    "saved_answers",
    "saved_engine_options",
    "saved_files",
]


def my_app_dir() -> Path:
    """Where accepted answers are kept: data/my_app/."""
    return data_dir() / "my_app"


# ---------------------------------------------------------------------- keeping the learner's code
_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _cell_source(views: Blueprint) -> str:
    """The source of the notebook cell(s) that defined the blueprint's views, without calls like check()."""
    # Unwrapped: a view decorated by Flask-Caching (or functools.wraps) is a function written in that library.
    functions = [inspect.unwrap(view) for view in blueprint_views(views)]
    files = dict.fromkeys(f.__code__.co_filename for f in functions if isinstance(f, FunctionType))
    kept: list[str] = []
    for filename in files:
        source = "".join(linecache.getlines(filename))
        if not source:
            raise CourseError(f"The source of your views ({filename}) cannot be read back: define them in a cell.")
        tree = ast.parse(source)
        for node in tree.body:
            if isinstance(node, _KEEP) or (isinstance(node, ast.Assign | ast.AnnAssign) and _is_definition(node)):
                kept.append(ast.get_source_segment(source, node, padded=False) or "")
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.decorator_list:
                    # get_source_segment starts at `def`: put the decorators back in front.
                    decorators = "".join(
                        "@" + (ast.get_source_segment(source, d) or "") + "\n" for d in node.decorator_list
                    )
                    kept[-1] = decorators + kept[-1]
    return "\n\n\n".join(kept) + "\n"


def _is_definition(node: ast.Assign | ast.AnnAssign) -> bool:
    """A module-level assignment worth keeping: a Blueprint, a constant, a query built from constants."""
    value = node.value
    if value is None:
        return False
    calls = [n for n in ast.walk(value) if isinstance(n, ast.Call)]
    names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
    # Calls into the lesson's objects (ex.improve.check(...), course.compare(...)) stay in the notebook.
    return not names & {"ex", "course", "display", "print"} and all(
        not isinstance(c.func, ast.Attribute) or not isinstance(c.func.value, ast.Name) or c.func.value.id != "ex"
        for c in calls
    )


def save(views: Blueprint, task: AppTask) -> Path:
    """Write the learner's accepted views to data/my_app/<lesson>_<endpoint>.py; return the path."""
    folder = my_app_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task.lesson}_{task.endpoint}.py"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f'"""Your {task.title} ({task.method} {task.rule}), written in lesson {task.lesson} and accepted by its '
        f'check on {when} ({task.course.backend}, {task.course.size})."""\n\n'
        "from helpers.shop.kit import *  # noqa: F403 (what the lessons write views with)\n\n"
    )
    path.write_text(header + _cell_source(views))
    return path


def saved_answers() -> dict[str, list[Path]]:
    """The learner's saved endpoints: {endpoint: [file, ...]}, every lesson's answer, in lesson order."""
    answers: dict[str, list[Path]] = {}
    for path in sorted(my_app_dir().glob("[0-9][0-9]_*.py")):
        answers.setdefault(re.sub(r"^\d\d_", "", path.stem), []).append(path)
    return answers


def saved_files() -> dict[str, Path]:
    """The learner's saved endpoints: {endpoint: file}, the latest lesson's answer for each (the one whose view
    serves the endpoint; `compose` adds what earlier lessons gave it)."""
    return {endpoint: paths[-1] for endpoint, paths in saved_answers().items()}


def _execute(path: Path) -> dict[str, Any]:
    """Run a saved answer as a module of its own; its namespace (a CourseError if it cannot run)."""
    namespace: dict[str, Any] = {"__name__": f"my_app_{path.stem}"}
    try:
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    except Exception as exc:
        raise CourseError(
            f"{path.name} cannot be loaded ({type(exc).__name__}: {exc}): rerun that lesson's improve-the-app "
            "cell and its check, with everything the view needs defined in that cell."
        ) from None
    return namespace


def _blueprint_of(path: Path, namespace: Mapping[str, Any]) -> Blueprint:
    blueprints = [v for v in namespace.values() if isinstance(v, Blueprint)]
    if len(blueprints) != 1:
        raise CourseError(f"{path.name} defines {len(blueprints)} blueprints, not one: rerun that lesson's check.")
    blueprint = blueprints[0]
    blueprint.name = f"my_{path.stem}"
    return blueprint


def load(path: Path) -> Blueprint:
    """The Blueprint defined by a saved answer, renamed after its file so several can share one app."""
    return _blueprint_of(path, _execute(path))


def my_views() -> list[Blueprint]:
    """The learner's app: one blueprint per endpoint they have improved, composed from every lesson's answer."""
    return [endpoint.blueprint for endpoint in compose()]


# ---------------------------------------------------------------------- composing the lessons' answers
# The hooks a blueprint can add to the whole app (Flask's *_app_request), by the app's attribute that keeps them.
_APP_HOOKS = {
    "before_request_funcs": "before_app_request",
    "after_request_funcs": "after_app_request",
    "teardown_request_funcs": "teardown_app_request",
}
_ROUTES = ("get", "post", "put", "patch", "delete", "route")


@dataclass(frozen=True)
class _Answer:
    """One lesson's saved answer for an endpoint, run: its file, namespace, blueprint and routes."""

    path: Path
    namespace: dict[str, Any]
    blueprint: Blueprint
    routes: dict[tuple[str, str], tuple[str, Any]]  # (rule, method): (the view's endpoint name, the view)

    @property
    def lesson(self) -> str:
        return self.path.name[:2]


def _answer(path: Path) -> _Answer:
    namespace = _execute(path)
    blueprint = _blueprint_of(path, namespace)
    routes = {
        (rule, method): (endpoint.rsplit(".", 1)[-1], view)
        for rule, methods, endpoint, view in _routes([blueprint])
        for method in methods
    }
    return _Answer(path, namespace, blueprint, routes)


def _app_hooks(blueprint: Blueprint) -> list[tuple[str, Any]]:
    """The hooks `blueprint` adds to every request of an app: (Blueprint method that adds one, function)."""
    app = _scratch([blueprint])
    return [(method, f) for attribute, method in _APP_HOOKS.items() for f in getattr(app, attribute).get(None, [])]


def is_cached(view: Any) -> bool:
    """Whether a view is wrapped by Flask-Caching (`cache.cached` or `cache.memoize` keep the plain function)."""
    return callable(getattr(view, "uncached", None))


def _cache_decorators(answer: _Answer, view: Any) -> list[Any]:
    """The decorators written between the route and the `def` of `answer`'s cached view, innermost first, as
    that answer's module evaluates them: applied to another function, they cache it as `view` is cached."""
    name = getattr(view.uncached, "__name__", "")
    source = answer.path.read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            routes = [i for i, d in enumerate(node.decorator_list) if _is_route(d)]
            below = node.decorator_list[max(routes, default=-1) + 1 :]
            # Each decorator as the learner's cell wrote it, evaluated where it was written.
            return [
                eval(compile(ast.Expression(d), str(answer.path), "eval"), answer.namespace)
                for d in reversed(below)
            ]
    return []


def _is_route(decorator: ast.expr) -> bool:
    """`@my_views.get(...)` and the like: the decorator that registers the view."""
    call = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(call, ast.Attribute) and call.attr in _ROUTES


@dataclass(frozen=True)
class Composed:
    """One endpoint of the learner's app and where each of its properties comes from.

    The view of the latest lesson that saved an answer for it serves it (`serving`): a later lesson rewrites
    what an earlier one wrote. A cache is kept from the first lesson that cached the view (`cache_from`): that
    lesson's check proved its hits, its key and its invalidation, so its decorators wrap the later view (without
    the later view's own cache, if it has one). The hooks every earlier answer adds to the app (an
    `after_app_request` that invalidates the cache when `POST /orders` writes) run in the app too (`hooks_from`),
    unless a later answer defines a hook of the same name.
    """

    endpoint: str
    files: tuple[Path, ...]
    serving: str  # the lesson whose view answers
    cache_from: str | None  # the lesson whose cache decorator wraps it (None: not cached)
    hooks_from: tuple[str, ...]  # earlier lessons whose app-wide hooks run in the app
    blueprint: Blueprint = field(repr=False)
    note: str = ""  # why an earlier property could not be carried over, if one could not

    def description(self) -> str:
        """Which lesson's answer serves the endpoint, and which lessons' properties it keeps."""
        parts = [f"lesson {self.serving}'s view"]
        if self.cache_from is not None and self.cache_from != self.serving:
            parts.append(f"lesson {self.cache_from}'s cache")
        if self.hooks_from:
            parts.append(f"lesson {', '.join(self.hooks_from)}'s hooks")
        return ", ".join(parts) + (f" ({self.note})" if self.note else "")


def _compose(endpoint: str, paths: Sequence[Path]) -> Composed:
    answers = [_answer(path) for path in paths]
    latest = answers[-1]
    cache_from, note = None, ""
    for (rule, method), (name, view) in latest.routes.items():
        earlier = next((a for a in answers if is_cached(a.routes.get((rule, method), (None, None))[1])), None)
        if earlier is None or earlier is latest:
            cache_from = latest.lesson if is_cached(view) else cache_from
            continue
        try:
            decorators = _cache_decorators(earlier, earlier.routes[rule, method][1])
            wrapped = getattr(view, "uncached", view)
            for decorator in decorators:
                wrapped = decorator(wrapped)
        except Exception as exc:  # the earlier cell's decorator does not apply here: say so, serve the view
            note = f"lesson {earlier.lesson}'s cache could not wrap it: {type(exc).__name__}: {exc}"
            continue
        if not is_cached(wrapped):
            note = f"lesson {earlier.lesson}'s cache is not a decorator on its view: it does not carry over"
            continue
        _serve_instead(latest.blueprint, name, wrapped)
        cache_from = earlier.lesson
    hooks_from = _carry_hooks(answers)
    return Composed(endpoint, tuple(paths), latest.lesson, cache_from, hooks_from, latest.blueprint, note)


def _serve_instead(blueprint: Blueprint, name: str, view: Any) -> None:
    """When `blueprint` is registered, its view `name` is replaced by `view` (its route, methods and the rest of
    the blueprint stay as written)."""
    blueprint.record(lambda state: state.app.view_functions.__setitem__(f"{state.name}.{name}", view))


def _carry_hooks(answers: Sequence[_Answer]) -> tuple[str, ...]:
    """Add every earlier answer's app-wide hooks to the latest blueprint (a later hook of the same name replaces
    an earlier one); the lessons whose hooks were added."""
    latest = answers[-1]
    taken = {getattr(f, "__name__", "") for _, f in _app_hooks(latest.blueprint)}
    carried: list[str] = []
    for answer in reversed(answers[:-1]):
        for method, hook in _app_hooks(answer.blueprint):
            if getattr(hook, "__name__", "") in taken:
                continue
            taken.add(getattr(hook, "__name__", ""))
            getattr(latest.blueprint, method)(hook)
            carried.append(answer.lesson)
    return tuple(sorted(set(carried)))


def compose() -> list[Composed]:
    """Every endpoint the learner saved, composed from all the lessons that saved an answer for it."""
    return [_compose(endpoint, paths) for endpoint, paths in saved_answers().items()]


def _scratch(blueprints: Sequence[Blueprint]) -> Flask:
    """A scratch app with what the blueprints set up (routes, app-wide hooks), run as registering them would,
    without registering them: a registered blueprint can no longer be changed, and `compose` changes them."""
    app = Flask("scratch")
    for blueprint in blueprints:
        state = blueprint.make_setup_state(app, {}, first_registration=True)
        for deferred in blueprint.deferred_functions:
            deferred(state)
    return app


def _routes(blueprints: Sequence[Blueprint]) -> list[tuple[str, frozenset[str], str, Any]]:
    """(rule, methods, endpoint, view) of every route the blueprints serve, found on a scratch app."""
    app = _scratch(blueprints)
    return [
        (rule.rule, frozenset((rule.methods or set()) - {"HEAD", "OPTIONS"}), rule.endpoint,
         app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    ]  # fmt: skip


def assemble(fallback: Blueprint) -> tuple[list[Blueprint], list[str]]:
    """The learner's app: their composed endpoints, and `fallback`'s views for every route they have not written.

    Returns the blueprints to serve and the endpoints that came from the fallback.
    """
    mine = my_views()
    covered = {(rule, method) for rule, methods, _, _ in _routes(mine) for method in methods}
    rest = Blueprint("not_yet_yours", __name__)
    borrowed = []
    for rule, methods, endpoint, view in _routes([fallback]):
        if not any((rule, method) in covered for method in methods):
            name = endpoint.rsplit(".", 1)[-1]
            rest.add_url_rule(rule, endpoint=name, view_func=view, methods=sorted(methods))
            borrowed.append(name)
    return [*mine, rest], borrowed


_ENGINE_OPTIONS_FILE = "07_engine_options.json"


# ---------------------------------------------------------------------- keeping the learner's pool
def _engine_options_path() -> Path:
    """Where the pool settings accepted in lesson 07 are kept: data/my_app/07_engine_options.json."""

    return my_app_dir() / _ENGINE_OPTIONS_FILE


def save_engine_options(options: Mapping[str, Any]) -> Path:
    """Keep the learner's ENGINE_OPTIONS (JSON: numbers and booleans) for the capstone; return the path."""
    path = _engine_options_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(options), indent=2, sort_keys=True) + "\n")
    return path


def saved_engine_options() -> dict[str, Any] | None:
    """The ENGINE_OPTIONS the learner's app runs with (from lesson 07), or None if not saved yet."""
    try:
        loaded = json.loads(_engine_options_path().read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def my_engine_options() -> dict[str, Any]:
    """The create_engine options the learner's app runs with: lesson 07's, or none (SQLAlchemy's default pool)."""
    return saved_engine_options() or {}


def my_app(course: Course, fallback: Blueprint, **config: Any) -> Flask:
    """The learner's app on `course`'s database: their composed endpoints (`fallback`'s views for the rest) on
    their pool, as the capstone and `make app VIEWS=mine` serve it."""
    views, _ = assemble(fallback)
    return course.app(views=views, ENGINE_OPTIONS=my_engine_options(), **config)
