"""Helpers for the lesson tests: a notebook cell's code run as IPython runs it, a notebook's code cells, and a
private copy of the dataset for a test that writes.

    from tests.cells import notebook_code_cells, private_copy, run_cell
"""

from __future__ import annotations

import json
import linecache
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from helpers.course import Course
from helpers.exercises import ____
from helpers.shop import kit

__all__ = ["notebook_code_cells", "private_copy", "run_cell"]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_cell(source: str, name: str, **names: Any) -> dict[str, Any]:
    """Run a notebook cell's code as IPython does, in a namespace of the kit's names, `____` and `names`.

    The cell is registered in linecache under a cell file name (so that `inspect` and the saved views read its
    source back); the check at its end (`ex.q1.check(...)`, after a blank line) is not run. Returns the namespace.
    """
    filename = f"/tmp/ipykernel_0/{name}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {kit_name: getattr(kit, kit_name) for kit_name in kit.__all__} | {"____": ____}
    namespace |= {"__name__": "__main__", **names}
    exec(compile(source.split("\n\nex.")[0], filename, "exec"), namespace)
    return namespace


def notebook_code_cells(filename: str) -> list[str]:
    """The source of each code cell of `notebooks/<filename>`, as committed."""
    cells = json.loads((NOTEBOOKS / filename).read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def private_copy(course: Course, name: str) -> AbstractContextManager[Course]:
    """A writable copy of the course's dataset for the block; its engine disposed and the copy removed after."""
    return course.scratch_copy(name)
