"""The project keeps its promises: same dependencies everywhere, locked, clean notebooks, lint, types, README."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from helpers.lessons import LESSONS, navigation_line

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LAB_LOCK, TEST_LOCK = ROOT / "requirements" / "lab.txt", ROOT / "requirements" / "test.txt"


def _name(requirement: str) -> str:
    return re.split(r"[<>=\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    declared = {r.replace(" ", "") for r in PYPROJECT["project"]["dependencies"]}
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = {
        line.strip()[2:].replace(" ", "") for line in pip_section.splitlines() if line.strip().startswith("- ")
    }
    listed.discard("-e.")
    assert listed == declared
    assert "requirements/lab.txt" in text  # and says where the tested versions are


def _group(name: str) -> list[Requirement]:
    """A dependency group of pyproject.toml, included groups expanded."""
    found = []
    for entry in PYPROJECT["dependency-groups"][name]:
        found += _group(entry["include-group"]) if isinstance(entry, dict) else [Requirement(entry)]
    return found


def _locked(path: Path) -> dict[str, list[Requirement]]:
    """The pins of a lock by package name (a package may be pinned twice, for different Pythons or platforms)."""
    pins: dict[str, list[Requirement]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            pin = Requirement(line.split("  #", 1)[0].strip())
            pins.setdefault(pin.name, []).append(pin)
    return pins


def _pinned(pin: Requirement) -> Version:
    [spec] = pin.specifier
    assert spec.operator == "==", pin
    return Version(spec.version)


DECLARED = [
    *(Requirement(r) for r in PYPROJECT["project"]["dependencies"]),
    *_group("dev"),
    *_group("build"),
]


@pytest.mark.parametrize("requirement", DECLARED, ids=str)
def test_the_lock_satisfies_pyproject_and_its_lower_bound_is_what_it_tests(requirement: Requirement) -> None:
    """requirements/ is regenerated (`make lock`) whenever pyproject.toml asks for something it does not hold, and
    each lower bound is the release series the lock holds: an older one would be claimed without being tested."""
    pins = _locked(TEST_LOCK).get(requirement.name.lower().replace("_", "-"), [])
    assert pins, f"{requirement.name} is not in {TEST_LOCK.name}: run `make lock`"
    versions = [_pinned(pin) for pin in pins]
    outside = [str(v) for v in versions if not requirement.specifier.contains(v, prereleases=True)]
    assert not outside, (
        f"{TEST_LOCK.name} pins {requirement.name} {', '.join(outside)}, outside {requirement}: make lock"
    )
    lower = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    oldest = min(versions)
    if lower and oldest.release[:2] != lower[0].release[:2]:
        pytest.fail(
            f"{requirement.name}: the lock tests {oldest}, so its lower bound in pyproject.toml should be "
            f">={oldest.major}.{oldest.minor}, not {requirement.specifier}"
        )


def test_the_lessons_lock_has_the_tested_versions() -> None:
    """What `make lab` installs is exactly what `make test` tested: lab.txt is test.txt without the tools."""
    lab, test = _locked(LAB_LOCK), _locked(TEST_LOCK)
    assert set(lab) < set(test)
    for name, pins in lab.items():
        assert {_pinned(p) for p in pins} <= {_pinned(p) for p in test[name]}, name
    # Learners get no test, lint or type tool, unless a lesson's dependency needs it (locust needs pytest).
    for line in LAB_LOCK.read_text().splitlines():
        name, via = line.partition("==")[0], line.partition("# via ")[2]
        if name in {r.name for r in _group("dev")}:
            assert via.replace("-c requirements/test.txt", "").strip(", "), f"{name} is in {LAB_LOCK.name}"


def test_the_lock_is_universal_from_the_oldest_supported_python() -> None:
    """One lock for every platform and every Python from requires-python's lower bound (uv --universal)."""
    oldest = Version(PYPROJECT["project"]["requires-python"].removeprefix(">="))
    makefile = (ROOT / "Makefile").read_text()
    assert f"--universal --python-version {oldest.major}.{oldest.minor}" in makefile
    text = TEST_LOCK.read_text()
    for marker in ("sys_platform == 'win32'", "sys_platform == 'darwin'", "python_full_version < '3.13'"):
        assert marker in text, marker


def test_this_environment_was_installed_from_the_lock() -> None:
    """`make test` installs requirements/test.txt; each package here is at its locked version."""
    stamp = Path(sys.prefix) / ".installed-test"
    if not stamp.exists() or stamp.read_text() != TEST_LOCK.read_text():
        pytest.skip(f"{sys.prefix} was not installed from {TEST_LOCK.name} (make test-latest, conda, pip)")
    from importlib.metadata import PackageNotFoundError, version

    wrong = []
    for name, pins in _locked(TEST_LOCK).items():
        for pin in pins:
            if pin.marker is None or pin.marker.evaluate():
                try:
                    installed = version(name)
                except PackageNotFoundError:
                    installed = "missing"
                if installed != str(_pinned(pin)):
                    wrong.append(f"{name} {installed} (locked {_pinned(pin)})")
    assert wrong == []


def test_the_commit_hooks_run_the_locked_tools() -> None:
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    hooked = {Requirement(r).name: _pinned(Requirement(r)) for r in re.findall(r'"([\w-]+==[\w.]+)"', config)}
    assert set(hooked) == {"nbstripout", "ruff"}
    for name, pinned in hooked.items():
        assert [_pinned(p) for p in _locked(TEST_LOCK)[name]] == [pinned], name
    assert "--keep-id" in config  # the committed cell ids stay as they are


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
    for command in ("make test-latest", "make lock", "make hooks", "make test ARGS="):
        assert command in readme


def test_readme_has_a_platform_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Platforms", 1)[1].split("\n## ", 1)[0]
    for platform in ("Linux", "macOS", "Windows (WSL2)", "Windows"):
        assert f"| {platform} |" in section, platform
    assert "DATABASE_URL" in section and "CACHE_REDIS_URL" in section


def test_make_test_passes_arguments_to_pytest_and_no_test_is_a_failure() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # not a sub-make of `make test`
    args = "ARGS=tests/test_project.py -k no_test_is_named_like_this"
    proc = subprocess.run(
        ["make", "--no-print-directory", "test", args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0, proc.stdout
    assert (
        "0 selected" in proc.stdout and "error: no test matched ARGS='tests/test_project.py -k no_" in proc.stderr
    )


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
