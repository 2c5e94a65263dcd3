"""What the course promises on each platform (README: Platforms), checked from Linux.

Native Windows: every helpers module imports, and the SQLite + SimpleCache path runs, in a Python made to look like
Windows's (POSIX-only modules unimportable, POSIX-only names gone, `sys.platform == "win32"`); the course's own
PostgreSQL and Redis say in one line what to set instead. macOS: a servers' folder too deep for a unix socket (its
temporary folders are, and its limit is 103 bytes) puts the sockets in a short folder instead.
"""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import helpers
from helpers import servers
from helpers.config import PROJECT_ROOT
from helpers.servers import postgres, processes
from helpers.servers import redis as redis_lifecycle

MODULES = ["helpers", *sorted(m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers."))]

# Run first in each child: import what `target` needs with the real platform, forget the course's own modules,
# then take away what Windows lacks and import them again. Third-party code keeps what it found at import (on
# Windows it takes its own Windows branch); the course's code meets Windows's Python. os.name stays "posix":
# pathlib builds a WindowsPath when it is "nt", which Linux cannot instantiate.
AS_WINDOWS = textwrap.dedent(
    """
    import importlib, os, signal, sys
    importlib.import_module(TARGET)
    for name in [n for n in sys.modules if n == "helpers" or n.startswith("helpers.")]:
        del sys.modules[name]
    for name in ("fcntl", "pwd", "grp", "resource", "termios", "tty", "pty", "posix_ipc", "syslog"):
        sys.modules[name] = None  # ImportError on import, as on Windows
    WINDOWS_SIGNALS = {"SIGABRT", "SIGFPE", "SIGILL", "SIGINT", "SIGSEGV", "SIGTERM", "SIG_DFL", "SIG_IGN"}
    for name in dir(signal):
        if name.startswith("SIG") and name not in WINDOWS_SIGNALS and not name.startswith("SIG_"):
            delattr(signal, name)
    for name in ("alarm", "pause", "setitimer", "getitimer", "pthread_kill", "pthread_sigmask", "sigwait",
                 "siginterrupt", "sigpending"):
        if hasattr(signal, name):
            delattr(signal, name)
    for name in ("getuid", "geteuid", "getgid", "getegid", "getgroups", "setsid", "getsid", "killpg", "fork",
                 "forkpty", "getpgid", "setpgid", "getpgrp", "setuid", "seteuid", "setgid", "chown", "lchown",
                 "fchown", "getloadavg", "uname", "mkfifo", "mknod", "nice", "openpty", "wait3", "wait4",
                 "WNOHANG", "pipe2", "sysconf", "statvfs", "sched_getaffinity", "posix_spawn", "register_at_fork"):
        if hasattr(os, name):
            delattr(os, name)
    sys.platform = "win32"
    importlib.import_module(TARGET)
    """
)


def run_as_windows(
    target: str, then: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Import `target` in a fresh Python made to look like Windows's, then run `then` there."""
    code = f"TARGET = {target!r}\n" + AS_WINDOWS + textwrap.dedent(then)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_module_list_is_found_dynamically() -> None:
    assert {"helpers.course", "helpers.servers.postgres", "helpers.shop.db", "helpers.lab"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports_as_on_windows(module: str) -> None:
    proc = run_as_windows(module)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_on_windows_the_own_servers_say_what_to_set_instead() -> None:
    proc = run_as_windows(
        "helpers.course",
        """
        import json
        from helpers.config import settings
        from helpers.db import course_url
        from helpers.errors import CourseError
        from helpers.servers import postgres_url, redis_url
        from helpers.course import cache_config
        said = []
        for attempt in (postgres_url, redis_url, lambda: course_url(settings(backend="postgres")),
                        lambda: cache_config(settings(cache="redis"))):
            try:
                attempt()
            except CourseError as exc:
                said.append(str(exc))
        print(json.dumps(said))
        """,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pg, redis, pg_backend, redis_cache = json.loads(proc.stdout)
    assert pg == pg_backend and redis == redis_cache
    for line, setting in ((pg, "DATABASE_URL"), (redis, "CACHE_REDIS_URL")):
        assert "\n" not in line and "not on native Windows" in line and f"set {setting} to your own" in line


def test_on_windows_the_lessons_run_on_sqlite_and_simplecache(tmp_path: Path) -> None:
    """What a lesson's setup, the app and `python -m helpers lab` do before JupyterLab starts, as on Windows."""
    proc = run_as_windows(
        "helpers.course",
        """
        import json
        from helpers.course import setup
        from helpers.lab import check_ready, lab_command
        course = setup("00", size="tiny")
        client = course.app().test_client()
        response = client.get("/customers/1")
        print(json.dumps({
            "ready": check_ready("tiny"),
            "status": response.status_code,
            "timing": response.headers["Server-Timing"],
            "root": "--allow-root" in lab_command(),
        }))
        """,
        env={"COURSE_DATA_DIR": str(tmp_path), "COURSE_BACKEND": "sqlite", "COURSE_CACHE": "simple"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = json.loads(proc.stdout.splitlines()[-1])
    assert said["ready"].startswith("Ready: the tiny dataset") and "on sqlite, cache simple" in said["ready"]
    assert said["status"] == 200 and said["timing"].startswith("db;dur=")
    assert said["root"] is False  # Windows has no root user (nor os.geteuid)


# ------------------------------------------------------------------------------------------ macOS: socket paths
@pytest.fixture
def deep_data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data folder whose socket paths would pass even Linux's 107 bytes (macOS's $TMPDIR gets close to that)."""
    base = Path(tempfile.mkdtemp(prefix="course-deep-"))
    deep = base / ("d" * 60) / ("e" * 30)
    deep.mkdir(parents=True)
    monkeypatch.setenv("COURSE_DATA_DIR", str(deep))
    monkeypatch.setattr(postgres, "_pg", None)  # the session's servers set aside, not stopped
    monkeypatch.setattr(redis_lifecycle, "_redis", None)
    try:
        yield deep
    finally:
        servers.stop_postgres()
        servers.stop_redis()
        servers.remove_servers()
        shutil.rmtree(base, ignore_errors=True)


def test_socket_paths_fit_the_platform_limit(deep_data_dir: Path) -> None:
    assert len(os.fsencode(deep_data_dir / "servers" / "redis" / "redis.sock")) > processes.SOCKET_PATH_MAX
    sock = servers.redis_socket()
    assert len(os.fsencode(sock)) <= processes.SOCKET_PATH_MAX and sock.parent.parent == Path("/tmp")
    assert servers.postgres_socket_dir() == processes.short_folder(servers.servers_dir() / "postgres")
    assert servers.postgres_socket_dir() != sock.parent  # one folder per server
    assert processes.socket_folder(Path("/srv/course/data"), "redis.sock") == Path("/srv/course/data")


@pytest.mark.postgres
@pytest.mark.redis
def test_servers_in_a_deep_folder_run_and_are_cleaned_up(deep_data_dir: Path) -> None:
    url = servers.postgres_url()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar() == 1
    finally:
        engine.dispose()
    assert f"host={servers.postgres_socket_dir()}" in url
    assert servers.redis_url() == f"unix://{servers.redis_socket()}"
    servers.check_redis(servers.redis_url())
    shorts = [servers.postgres_socket_dir(), servers.redis_socket().parent]
    assert all(path.stat().st_mode & 0o077 == 0 for path in shorts)  # private to the user
    left = processes.server_processes_under(servers.servers_dir())
    assert len(left) == 2  # found by their short socket folders too (Redis's title names only its socket)
    said = servers.remove_servers()  # `make clean-servers`: stops both, removes their folders, short ones too
    assert said.startswith("Removed ") and said.count("(pid ") == 2, said
    assert not any(path.exists() for path in shorts)
    assert processes.server_processes_under(servers.servers_dir()) == []
