"""Bad input through every entry point a learner uses is one line that says what to do, within seconds.

The entry points: `make data|reset|app|bench|lab`, the command lines they run (`python -m helpers ...`),
and `setup()` in a notebook. The bad inputs: an unreachable server, a wrong password (a real PostgreSQL
that requires one), a malformed URL, unknown drivers, a missing SQLite folder, an unknown size, a file
that is not a course dataset, and an unreachable Redis.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.config import PROJECT_ROOT

SECONDS = 20  # generous for a busy machine: every check gives up within a few seconds
NOT_A_DATASET = "my notes, not a database"
# Set per case; anything else the course reads is cleared, so the learner's environment plays no part.
COURSE_VARIABLES = ("COURSE_SIZE", "COURSE_BACKEND", "COURSE_CACHE", "DATABASE_URL", "CACHE_REDIS_URL")


@dataclass(frozen=True)
class Case:
    """A bad input: the environment that carries it, and how the one line it gives starts and goes on."""

    env: dict[str, str]
    says: str  # the line's start
    then: str  # what the line says further on (what to do)
    not_a_dataset: bool = False  # write a text file where the tiny dataset belongs
    harmless_for: tuple[str, ...] = field(default=())  # targets that do not use it and must succeed


# The Makefile's own variables: `make test ARGS=...` puts them in the tests' environment, where the makes the tests
# run would read them (ARGS=--durations=60 handed to `helpers bench`).
MAKE_VARIABLES = {"ARGS", "SIZE", "PORT", "BACKENDS", "VIEWS", "VENV", "PYTHON", "LOCK_ARGS"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def password_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port that requires a password (SCRAM): its URL, right.

    Its folder is not under pytest's tmp_path, which another pytest session may make unreachable for the
    user PostgreSQL runs as (see tests/test_servers.py::private_folder).
    """
    from helpers.servers import postgres

    candidates = postgres._bin_candidates()
    if not candidates:
        pytest.skip("no PostgreSQL binaries: the wrong-password case needs a real server")
    bin_dir = candidates[0]
    folder = Path(tempfile.mkdtemp(prefix="course-password-server-"))
    pgdata, pwfile, port = folder / "pgdata", folder / "pw", free_port()
    user = postgres._system_user(pgdata)  # as root, postgres runs as another user, as the course's does
    pwfile.write_text("right-password\n")
    if user is not None:
        for path in (folder, bin_dir):
            postgres._let_traverse(path)
        os.chown(folder, user.pw_uid, user.pw_gid)
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    init = [bin_dir / "initdb", "-D", pgdata, "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}"]
    code, out = postgres._run_as(init, folder, user, timeout=120)
    assert code == 0, out
    options = f"-p {port} -h 127.0.0.1 -k {pgdata}"
    start = [bin_dir / "pg_ctl", "start", "-D", pgdata, "-l", folder / "log", "-w", "-s", "-o", options]
    code, out = postgres._run_as(start, folder, user, timeout=90)
    assert code == 0, out
    try:
        yield f"postgresql+psycopg://postgres:right-password@127.0.0.1:{port}/shop_tiny"
    finally:
        stop = [bin_dir / "pg_ctl", "stop", "-D", pgdata, "-m", "fast", "-w", "-s"]
        postgres._run_as(stop, folder, user, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


CASES = {
    "unreachable-server": Case(
        {"DATABASE_URL": "postgresql+psycopg://nobody:x@127.0.0.1:1/none"},
        "Cannot reach the database at postgresql+psycopg://nobody:***@127.0.0.1:1/none (Connection refused)",
        ": check DATABASE_URL, start the server, or unset DATABASE_URL",
    ),
    "wrong-password": Case(  # DATABASE_URL comes from the password_server fixture
        {},
        "The database at postgresql+psycopg://postgres:***@127.0.0.1:",
        ' refused the login (password authentication failed for user "postgres"): fix the user name or password',
    ),
    "malformed-url": Case(
        {"DATABASE_URL": "postgresql+psycopg://me:pw@host:port/db"},
        "DATABASE_URL 'postgresql+psycopg://me:***@host:port/db' is not a database URL",
        ": use a form like sqlite:////absolute/path/file.sqlite or postgresql+psycopg://",
    ),
    "mysql-driver": Case(
        {"DATABASE_URL": "mysql://me@localhost/shop"},
        "No database driver for mysql:// URLs (No module named 'MySQLdb')",
        ": use a sqlite:/// or postgresql+psycopg:// URL",
    ),
    "unknown-driver": Case(
        {"DATABASE_URL": "foo://"}, "No database driver for foo:// URLs", ": use a sqlite:/// or postgresql"
    ),
    "missing-sqlite-folder": Case(
        {"DATABASE_URL": "sqlite:////no/such/dir/x.sqlite"},
        "The folder /no/such/dir for the SQLite database /no/such/dir/x.sqlite does not exist",
        ": create it, or fix DATABASE_URL.",
    ),
    "unknown-size": Case(
        {"COURSE_SIZE": "huge"}, "Unknown COURSE_SIZE 'huge'", ": choose one of tiny, small, medium, large"
    ),
    "not-a-dataset": Case(
        {},
        "sqlite+pysqlite:///",
        "shop-tiny.sqlite cannot be read as a course dataset (file is not a database): "
        "rebuild it with `make reset SIZE=tiny`",
        not_a_dataset=True,
        harmless_for=("reset",),
    ),
    "unreachable-redis": Case(
        {"COURSE_CACHE": "redis", "CACHE_REDIS_URL": "redis://127.0.0.1:1/0"},
        "Cannot reach Redis at redis://127.0.0.1:1/0 (Connection refused)",
        ": start it, or unset CACHE_REDIS_URL to use the course's own server.",
        harmless_for=("data", "reset"),  # building a dataset does not use the cache
    ),
}
# What `make <target>` runs, as the command line; `app` gets a free port in case a check wrongly passed.
TARGETS = {
    "data": ["data", "build"],
    "reset": ["data", "build", "--force"],
    "app": ["app"],
    "bench": ["bench", "--only", "projection", "--repeat", "1"],
    "lab": ["lab"],
}


# Through make, every target with the cases where make's part differs (SIZE, targets that must succeed):
# make only runs the command lines, which are tested with every case.
MAKE_CASES = ["unreachable-server", "unknown-size", "not-a-dataset", "unreachable-redis"]


@pytest.fixture(params=list(TARGETS))
def target(request: pytest.FixtureRequest) -> str:
    """Each target, as `make <target>` names it (both ways in are tested with every target)."""
    return str(request.param)


@pytest.fixture
def bad_input(case: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Case, dict[str, str]]:
    """The case the test is parametrized with, and the environment to run it in (a private data folder)."""
    bad = CASES[case]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*COURSE_VARIABLES, *MAKE_VARIABLES) and not k.startswith("MAKE")
    }
    env.update({"COURSE_DATA_DIR": str(tmp_path), "COURSE_SIZE": "tiny", **bad.env})
    if case == "wrong-password":
        url = request.getfixturevalue("password_server")
        env["DATABASE_URL"] = url.replace("right-password", "wrong-password")
    if bad.not_a_dataset:
        (tmp_path / "shop-tiny.sqlite").write_text(NOT_A_DATASET)
    return bad, env


def run(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `command` with warnings as errors (a warning would be a second line); return it and its seconds."""
    started = time.monotonic()
    env = {**env, "PYTHONWARNINGS": "error"}
    proc = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - started


def says_one_line(case: Case, text: str) -> bool:
    """Whether `text` is one line that starts and goes on as `case` says."""
    return text.count("\n") == 1 and text.startswith(case.says) and case.then in text


def assert_harmless(case: Case, proc: subprocess.CompletedProcess[str], data: Path) -> None:
    """A target that does not use the bad input succeeds, and keeps a file that is not a dataset."""
    assert proc.returncode == 0, proc.stderr
    if case.not_a_dataset:
        assert (data / "shop-tiny.sqlite.bak").read_text() == NOT_A_DATASET
        assert proc.stderr.strip().splitlines() == [
            f"Kept the file that was at {data}/shop-tiny.sqlite as {data}/shop-tiny.sqlite.bak."
        ]


@pytest.mark.parametrize("case", CASES)
def test_command_line_says_one_line(
    case: str, target: str, bad_input: tuple[Case, dict[str, str]], tmp_path: Path
) -> None:
    bad, env = bad_input
    arguments = [*TARGETS[target], *(["--port", str(free_port())] if target == "app" else [])]
    proc, seconds = run([sys.executable, "-m", "helpers", *arguments], env)
    if target in bad.harmless_for:
        assert_harmless(bad, proc, tmp_path)
        return
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stdout == "", proc.stdout + proc.stderr
    assert says_one_line(bad, proc.stderr.removeprefix("error: ")), proc.stderr
    assert seconds < SECONDS


@pytest.mark.parametrize("case", MAKE_CASES)
def test_make_says_one_line(
    case: str, target: str, bad_input: tuple[Case, dict[str, str]], tmp_path: Path
) -> None:
    bad, env = bad_input
    proc, seconds = run(["make", "--no-print-directory", target, f"PORT={free_port()}"], env)
    if target in bad.harmless_for:
        assert_harmless(bad, proc, tmp_path)
        return
    assert proc.returncode == 2, proc.stdout + proc.stderr
    ours, makes = proc.stderr.splitlines()  # make adds its own line, and nothing else is printed
    assert ours.startswith("error: ") and says_one_line(bad, ours.removeprefix("error: ") + "\n"), proc.stderr
    assert re.fullmatch(rf"make: \*\*\* \[Makefile:\d+: {target}\] Error 2", makes), makes
    assert proc.stdout == ""
    assert seconds < SECONDS


@pytest.mark.parametrize("case", CASES)
def test_notebook_setup_shows_one_line_under_the_cell(
    case: str, bad_input: tuple[Case, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, env = bad_input
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell('from helpers.course import setup\ncourse = setup("00")')]
    )
    for name in COURSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():  # the kernel starts with this process's environment
        monkeypatch.setenv(name, value)
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    [output] = nb.cells[0].outputs  # nothing else under the cell: no traceback, no warning, no progress bar
    assert output.output_type == "error" and output.ename == "CourseError", output
    [line] = output.traceback
    assert line == f"\x1b[31mCourseError: {output.evalue}\x1b[0m"
    assert says_one_line(bad, output.evalue + "\n"), output.evalue


def test_the_right_password_builds_the_dataset_on_that_server(password_server: str, tmp_path: Path) -> None:
    """The wrong-password server is a real one: with the right password the course fills a new database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*COURSE_VARIABLES, *MAKE_VARIABLES) and not k.startswith("MAKE")
    }
    env.update(COURSE_DATA_DIR=str(tmp_path), COURSE_SIZE="tiny", DATABASE_URL=password_server)
    proc, _ = run([sys.executable, "-m", "helpers", "data", "build"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("tiny dataset at postgresql+psycopg://postgres:***@127.0.0.1:"), proc.stdout
    assert "right-password" not in proc.stdout + proc.stderr
