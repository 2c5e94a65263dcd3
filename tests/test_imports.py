"""The shape of helpers/: no import circles, lower floors never import upper ones, deferred imports say why.

Read from the source (ast), so imports inside functions count as much as those at the top; imports under
`if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "helpers"

# Floors, lowest first: a module imports from its own floor or below, never above. The shop imports only the
# settings, the errors and its database wiring (flaskr's shape); whatever drives the shop sits above it.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("helpers.errors", "helpers.config", "helpers.lessons"),
    ("helpers.db", "helpers.servers"),
    ("helpers.shop", "helpers.library"),
    ("helpers.data",),
    ("helpers.measure",),
    ("helpers.course", "helpers.renumbering", "helpers.claims"),
    ("helpers.topics",),
    ("helpers.exercises",),
    ("helpers.bench", "helpers.instructor", "helpers.lab", "helpers.serving", "helpers.cli", "helpers.__main__"),
    ("helpers",),
)
BLOCK = ("import ", "from ", "#", ")")  # the lines of a block of imports and the comment leading it
SHOP_MAY_IMPORT = ("helpers.shop", "helpers.config", "helpers.errors", "helpers.db")
# The on-call lesson's library is a second app of the same shape: it borrows only the shop's database wiring.
LIBRARY_MAY_IMPORT = ("helpers.library", "helpers.config", "helpers.errors", "helpers.db", "helpers.shop.db")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(sub) for sub in ast.walk(node))
    return inside


def _imports(name: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, list[str]]]:
    """Each import statement that runs, with the modules it names (a name imported from a package may be one)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield node, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            # `from package import module` imports that module; `from module import name`, the module itself.
            yield node, [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]


def _graph() -> dict[str, set[str]]:
    return {
        name: {t for _, targets in _imports(name) for t in targets if t in MODULES and t != name}
        for name in MODULES
    }


def _floor(name: str) -> int:
    for level, prefixes in enumerate(FLOORS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{name} is on no floor: add it to FLOORS in tests/test_imports.py")


def test_there_are_no_import_circles() -> None:
    graph = _graph()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_every_module_is_on_a_floor_and_imports_only_downward() -> None:
    upward = [
        f"{name} (floor {_floor(name)}) imports {target} (floor {_floor(target)})"
        for name, targets in _graph().items()
        for target in targets
        if _floor(target) > _floor(name)
    ]
    assert upward == []


def _imports_outside(package: str, allowed: tuple[str, ...]) -> list[str]:
    return [
        f"{name} imports {target}"
        for name, targets in _graph().items()
        if name == package or name.startswith(package + ".")
        for target in targets
        if not any(target == p or target.startswith(p + ".") for p in allowed)
    ]


def test_the_shop_imports_only_settings_errors_and_its_db() -> None:
    assert _imports_outside("helpers.shop", SHOP_MAY_IMPORT) == []


def test_the_library_imports_only_settings_errors_and_the_db_wiring() -> None:
    assert _imports_outside("helpers.library", LIBRARY_MAY_IMPORT) == []


def test_helpers_never_imports_tools() -> None:
    found = [
        f"{name}:{node.lineno}"
        for name in MODULES
        for node, targets in _imports(name)
        if any(t == "tools" or t.startswith("tools.") for t in targets)
    ]
    assert found == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_inside_functions_say_why_they_are_deferred(name: str) -> None:
    """An import inside a function is deliberate (a heavy or optional dependency): a `# deferred: ...` comment on
    it, or on the comment lines just above the block of imports it belongs to, says so."""
    lines = MODULES[name].read_text().splitlines()
    tree = ast.parse("\n".join(lines))
    skip = _type_checking_nodes(tree)
    unexplained = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
                row = node.lineno - 1
                above = row
                while above > 0 and (not lines[above - 1].strip() or lines[above - 1].strip().startswith(BLOCK)):
                    above -= 1  # walk up over the block of imports and the comment that leads it
                if not any("deferred" in line for line in lines[above : node.end_lineno or row + 1]):
                    unexplained.append(f"line {node.lineno}: {ast.unparse(node)[:70]}")
    assert unexplained == []


@pytest.mark.parametrize("name", sorted(set(MODULES) - {"helpers.__main__"}))
def test_every_module_lists_what_it_exports(name: str) -> None:
    """`__all__` names every public top-level name the module defines (and may re-export what it imports, as a
    package does); nothing in it is private, and what is used only inside a module has a leading underscore."""
    tree = ast.parse(MODULES[name].read_text())
    defined: set[str] = set()
    imported: set[str] = set()
    declared: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            imported.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name) and target.id == "__all__" and node.value is not None:
                    declared = list(ast.literal_eval(node.value))
                elif isinstance(target, ast.Name):
                    defined.add(target.id)
    assert declared is not None, f"{name} has no __all__"
    public = {n for n in defined if not n.startswith("_") or n == "____"}
    assert sorted(public - set(declared)) == [], "public names missing from __all__"
    assert sorted(set(declared) - public - imported) == [], (
        "__all__ names what the module neither defines nor imports"
    )
    assert [n for n in declared if n.startswith("_") and n != "____"] == [], "__all__ names private names"


# The notebooks' surface (see helpers/__init__.py): modules, or packages whose modules all count.
NOTEBOOK_SURFACE = (
    "helpers.course", "helpers.measure", "helpers.topics", "helpers.exercises", "helpers.shop",
    "helpers.library.models", "helpers.data", "helpers.claims", "helpers.instructor", "helpers.servers",
    "helpers.db",
)  # fmt: skip
BEHIND_THE_SURFACE = (
    "helpers.exercises.core",
    "helpers.data.build",
    "helpers.data.generate",
    "helpers.data.kinds",
)


def test_notebooks_import_from_the_documented_surface_only() -> None:
    outside = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
                    module = node.module or ""
                    listed = any(module == p or module.startswith(p + ".") for p in NOTEBOOK_SURFACE)
                    if (
                        not listed
                        or module in BEHIND_THE_SURFACE
                        or any(a.name.startswith("_") and a.name != "____" for a in node.names)
                    ):
                        outside.append(
                            f"{path.name}: from {module} import {', '.join(a.name for a in node.names)}"
                        )
    assert outside == []
