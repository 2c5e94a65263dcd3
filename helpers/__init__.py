"""Infrastructure for the course: dataset, engines, measuring harness, query recorder, plots, widgets.

Importing a submodule (`helpers.recorder`, say) loads only what it needs; the names below are imported on
first use, so `import helpers` stays light too.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SIZES": "config",
    "Settings": "config",
    "settings": "config",
    "Course": "course",
    "setup": "course",
    "build_dataset": "data",
    "copy_dataset": "data",
    "ensure_dataset": "data",
    "make_engine": "db",
    "CourseError": "errors",
    "Comparison": "harness",
    "Measurement": "harness",
    "compare": "harness",
    "measure": "harness",
    "scaling": "harness",
    "Plan": "recorder",
    "QueryRecorder": "recorder",
    "explain": "recorder",
    "record": "recorder",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
