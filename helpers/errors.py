"""One-line errors for learners: what went wrong and what to do."""

from __future__ import annotations

import sys
from typing import Any


class CourseError(Exception):
    """A problem the learner can fix; its message is one line that says how."""


def show_course_errors_briefly() -> None:
    """In IPython, print a CourseError as one red line instead of a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return
    shell = get_ipython()
    if shell is None:
        return

    def _handler(
        shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
    ) -> None:
        print(f"\x1b[31mCourseError: {value}\x1b[0m", file=sys.stderr)

    shell.set_custom_exc((CourseError,), _handler)
