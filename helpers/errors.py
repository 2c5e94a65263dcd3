"""One-line errors for learners: what went wrong and what to do."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["CourseError", "gist", "show_course_errors_briefly"]


class CourseError(Exception):
    """A problem the learner can fix; its message is one line that says how."""


def gist(exc: BaseException) -> str:
    """The gist of a driver's error on one line: the first line of its message, without addresses."""
    text = str(getattr(exc, "orig", None) or exc)
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = first.rsplit(" failed: ", 1)[-1]  # libpq: 'connection to server at "h", port 1 failed: …'
    first = re.sub(r"^(FATAL|ERROR):\s+", "", first)  # libpq again: the server's own severity
    first = re.sub(r"^Error \d+ connecting to .*?\.\s+", "", first)  # redis-py: 'Error 111 connecting to h:1. …'
    return " ".join(first.split()).rstrip(".") or type(exc).__name__


def show_course_errors_briefly() -> None:
    """In IPython, show a CourseError as one red line under the cell instead of a traceback."""
    try:
        from IPython import get_ipython  # deferred: only a kernel has one to talk to; errors stays light
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    shell = get_ipython()
    if shell is None:
        return

    def _one_line(
        shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
    ) -> None:
        # IPython ignores what a handler returns (ipython/ipython#12378), so show it here, through the hook
        # ipykernel overrides: in Jupyter the cell gets one error output (CourseError: ...) and Run All stops.
        shell._showtraceback(etype, value, [f"\x1b[31mCourseError: {value}\x1b[0m"])

    shell.set_custom_exc((CourseError,), _one_line)
