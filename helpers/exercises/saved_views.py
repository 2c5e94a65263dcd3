"""What the learner builds, kept for the capstone: accepted endpoints and pool settings under data/my_app/.

* `save(views, task)` writes the cell that defined an accepted Blueprint to data/my_app/<lesson>_<endpoint>.py;
* `saved_files()`, `load(path)`, `my_views()` read them back, and `assemble(fallback)` builds the learner's
  app from them (the fallback's views serve every route they have not written);
* `save_engine_options` / `saved_engine_options`: the pool settings accepted in the pooling lesson.
"""

from __future__ import annotations

import ast
import inspect
import json
import linecache
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FunctionType
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask

from ..config import data_dir
from ..errors import CourseError
from .core import blueprint_views

if TYPE_CHECKING:
    from .app_task import AppTask

__all__ = [
    "assemble",
    "load",
    "my_app_dir",
    "my_views",
    "save",
    "save_engine_options",
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


def saved_files() -> dict[str, Path]:
    """The learner's saved endpoints: {endpoint: file}, the latest lesson's version of each."""
    latest: dict[str, Path] = {}
    for path in sorted(my_app_dir().glob("[0-9][0-9]_*.py")):
        endpoint = re.sub(r"^\d\d_", "", path.stem)
        latest[endpoint] = path  # sorted by lesson number: a later lesson's version wins
    return latest


def load(path: Path) -> Blueprint:
    """The Blueprint defined by a saved answer, renamed after its file so several can share one app."""
    namespace: dict[str, Any] = {"__name__": f"my_app_{path.stem}"}
    try:
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    except Exception as exc:
        raise CourseError(
            f"{path.name} cannot be loaded ({type(exc).__name__}: {exc}): rerun that lesson's improve-the-app "
            "cell and its check, with everything the view needs defined in that cell."
        ) from None
    blueprints = [v for v in namespace.values() if isinstance(v, Blueprint)]
    if len(blueprints) != 1:
        raise CourseError(f"{path.name} defines {len(blueprints)} blueprints, not one: rerun that lesson's check.")
    blueprint = blueprints[0]
    blueprint.name = f"my_{path.stem}"
    return blueprint


def my_views() -> list[Blueprint]:
    """The learner's app: one blueprint per endpoint they have improved (the latest version of each)."""
    return [load(path) for path in saved_files().values()]


def _routes(blueprints: Sequence[Blueprint]) -> list[tuple[str, frozenset[str], str, Any]]:
    """(rule, methods, endpoint, view) of every route the blueprints serve, found on a scratch app."""
    app = Flask("scratch")
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return [
        (rule.rule, frozenset((rule.methods or set()) - {"HEAD", "OPTIONS"}), rule.endpoint,
         app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    ]  # fmt: skip


def assemble(fallback: Blueprint) -> tuple[list[Blueprint], list[str]]:
    """The learner's app: their saved endpoints, and `fallback`'s views for every route they have not written.

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
