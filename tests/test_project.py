"""The project keeps its promises: same dependencies everywhere, clean notebooks, lint, types, README."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers.lessons import LESSONS, navigation_line

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(requirement: str) -> str:
    return re.split(r"[<>=\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {r.replace(" ", "") for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = {
        line.strip()[2:].replace(" ", "") for line in pip_section.splitlines() if line.strip().startswith("- ")
    }
    listed.discard("-e.")
    assert listed == declared


def _staged(path: Path) -> str:
    """The notebook as git will commit it (a learner's saved outputs on disk are theirs to keep)."""
    proc = subprocess.run(
        ["git", "show", f":{path.relative_to(ROOT)}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else path.read_text()


def test_notebooks_are_committed_without_outputs() -> None:
    for path in NOTEBOOKS:
        for cell in json.loads(_staged(path))["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
            # JupyterLab records each cell's run times (the course turns that on): not in the committed copy
            assert "execution" not in cell.get("metadata", {}), path.name


# A code cell holds the code the lesson is about, or a short call into helpers: plumbing (SQL rewriting, plan
# parsing, charts, load-test bookkeeping) lives in helpers/topics/. A longer cell is tagged as the lesson subject.
SUBJECT_TAG = "subject"
MAX_CELL_LINES = 40


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_show_what_they_teach(path: Path) -> None:
    long = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        lines = len("".join(cell["source"]).splitlines())
        if (
            cell["cell_type"] == "code"
            and lines > MAX_CELL_LINES
            and SUBJECT_TAG not in cell["metadata"].get("tags", [])
        ):
            long.append(f"cell {i} ({lines} lines)")
    assert not long, (
        f"{path.name}: code cells over {MAX_CELL_LINES} lines not tagged {SUBJECT_TAG!r}: {', '.join(long)}; "
        "move the plumbing into helpers/topics/, or tag the cell if it is the lesson's subject"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_shows_a_solution_when_run_top_to_bottom(path: Path) -> None:
    """`solution()` is the learner's to call: a committed notebook only mentions it in a comment."""
    calls = [
        f"cell {i}: {line.strip()}"
        for i, cell in enumerate(json.loads(path.read_text())["cells"])
        if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if re.search(r"\.solution\(", line.split("#", 1)[0])
    ]
    assert calls == []


def test_the_registry_the_notebooks_the_exercises_and_the_lesson_tests_agree() -> None:
    """Every lesson in helpers/lessons.py has its notebook; a lesson with exercises has its module (declaring an
    `exercises(course)` the notebook calls) and its tests; its topic modules exist; nothing exists without one."""
    registered = {lesson.number for lesson in LESSONS}
    for lesson in LESSONS:
        notebook = (ROOT / "notebooks" / lesson.filename).read_text()
        module = ROOT / "helpers" / "exercises" / f"lesson{lesson.number}.py"
        if lesson.exercises:
            assert "def exercises(course" in module.read_text(), module
            assert f"from helpers.exercises.lesson{lesson.number} import" in notebook, lesson.filename
            assert (ROOT / "tests" / f"test_lesson{lesson.number}.py").is_file(), lesson.number
        else:
            assert not module.exists(), f"{module.name}: lesson {lesson.number} is registered without exercises"
        for topic in lesson.topics:
            assert (ROOT / "helpers" / "topics" / f"{topic}.py").is_file(), (lesson.number, topic)
    modules = {p.stem.removeprefix("lesson") for p in (ROOT / "helpers" / "exercises").glob("lesson*.py")}
    tests = {p.stem.removeprefix("test_lesson") for p in (ROOT / "tests").glob("test_lesson*.py")}
    assert modules <= registered and tests <= registered, (modules - registered, tests - registered)


def test_every_lesson_has_its_notebook_and_navigation_line() -> None:
    assert [p.name for p in NOTEBOOKS] == [lesson.filename for lesson in LESSONS]
    for lesson in LESSONS:
        first = json.loads((ROOT / "notebooks" / lesson.filename).read_text())["cells"][0]
        source = "".join(first["source"])
        assert first["cell_type"] == "markdown"
        assert source.splitlines()[0] == navigation_line(lesson.number), lesson.filename
        assert f"# {lesson.number} · {lesson.title}" in source, lesson.filename


def test_no_lesson_is_left_unfinished() -> None:
    for path in NOTEBOOKS:
        text = path.read_text()
        assert "TODO" not in text and "FIXME" not in text, path.name


def test_readme_lists_every_lesson_and_command() -> None:
    readme = (ROOT / "README.md").read_text()
    for lesson in LESSONS:
        assert lesson.filename in readme
    for command in ("make lab", "make test", "make data", "make bench", "make app", "COURSE_BACKEND=postgres"):
        assert command in readme


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_and_notebooks_pass(command: list[str]) -> None:
    tool = Path(sys.executable).parent / command[0]
    proc = subprocess.run([str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
