"""The shop on a real WSGI server (waitress) in the background, and concurrent HTTP clients to load it.

* `serve_in_thread(app)` serves an app object from this process: the notebook can read its pool and cache
  while clients hit it (lessons 06 and 07);
* `serve_in_process(...)` starts `python -m helpers app` as a child process: a server of its own, as in
  production (two of them show that a per-process cache is per process; the capstone loads them);
* `run_load(url, paths, concurrency=...)` sends requests from several threads over keep-alive connections
  and reports latencies, throughput and errors.

Everything listens on 127.0.0.1 only and stops when asked, or with the process that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from waitress.server import create_server

from ..config import PROJECT_ROOT
from ..errors import CourseError

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["Served", "free_port", "serve_in_process", "serve_in_thread", "served", "wait_until"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running server: its base URL, and `stop()` (also on leaving a `with` block)."""

    url: str
    _stop: Any = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    output: Any = field(default=None, repr=False)  # the file a child server writes its output to

    def said(self) -> str:
        """What the server has printed so far (empty for a server in this process, or once stopped)."""
        if self.output is None or self.output.closed:
            return ""
        # pread: the child writes through the same open file, so moving its offset would overwrite its output
        chunks, offset = [], 0
        while chunk := os.pread(self.output.fileno(), 1 << 16, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def get(self, path: str, timeout_s: float = 10) -> tuple[int, dict[str, str], bytes]:
        """One GET on a fresh connection: (status, headers, body)."""
        return _get(self.url, path, timeout_s)

    def __enter__(self) -> Served:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _get(base: str, path: str, timeout_s: float) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def serve_in_thread(app: Flask, *, threads: int = 8, port: int = 0, **options: Any) -> Served:
    """Serve `app` with waitress from a background thread of this process; `threads` handle requests."""

    socket_map: dict[int, Any] = {}  # ours, so stop() can close every connection the server holds
    server = create_server(
        app, map=socket_map, host="127.0.0.1", port=port, threads=threads, ident="shop", **options
    )
    runner = threading.Thread(target=server.run, daemon=True, name="waitress")
    runner.start()

    def close_sockets() -> None:
        for dispatcher in list(socket_map.values()):
            with contextlib.suppress(OSError):
                dispatcher.close()

    def stop() -> None:
        # Worker threads first: one finishing a request pulls the server's trigger, which must still be open.
        server.task_dispatcher.shutdown(timeout=5)
        # Then the sockets, closed by the server's own loop (a trigger thunk runs there): closed from here, one
        # could vanish under the loop's select() (EBADF). With no sockets left, the loop ends.
        if runner.is_alive():
            try:
                server.trigger.pull_trigger(close_sockets)
            except OSError:
                # The trigger is closed: waitress closed its listening socket itself (it closes the trigger
                # with it, after an error on that socket), and the loop still watches the connections left.
                # Take them out of its map so that it ends; close_sockets() below closes them from here.
                left = dict(socket_map)
                socket_map.clear()
                runner.join(5)
                socket_map.update(left)
            else:
                runner.join(5)
        close_sockets()

    served = Served(f"http://127.0.0.1:{server.effective_port}", stop)
    atexit.register(served.stop)
    return served


def serve_in_process(
    *,
    views: str = "optimized",
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    threads: int = 8,
    port: int | None = None,
    engine_options: Mapping[str, Any] | None = None,
    ready_timeout_s: float = 60,
) -> Served:
    """Start `python -m helpers app` as a child process and wait until it answers.

    `views` is 'baseline', 'optimized' or 'mine' (the learner's saved endpoints); `database_url` serves that
    database as it is (no copy, no indexes added); `env` adds environment variables (COURSE_CACHE, ...).
    """
    port = port or free_port()
    command = [sys.executable, "-m", "helpers", "app", "--port", str(port), "--threads", str(threads)]
    command += ["--views", views]
    if database_url:
        command += ["--database-url", database_url]
    if engine_options:
        command += ["--engine-options", json.dumps(dict(engine_options))]
    # The server's output goes to a file, not a pipe: under load waitress warns of every request queued behind its
    # busy threads, and a pipe nobody reads fills up and blocks the whole server. Read back if it fails to start.
    output = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Jupyter's interrupt (SIGINT to the kernel's group) spares it
    )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output.close()

    served = Served(f"http://127.0.0.1:{port}", stop, process, output)
    atexit.register(served.stop)
    deadline = time.monotonic() + ready_timeout_s
    while True:
        if process.poll() is not None:
            said = served.said()
            served.stop()
            last = [line for line in said.splitlines() if line.strip()][-1:] or ["no output"]
            raise CourseError(f"The app server did not start ({last[0]}).")
        try:
            if _get(served.url, "/", 2)[0] == 200:
                return served
        except OSError:
            pass
        if time.monotonic() > deadline:
            served.stop()
            raise CourseError(f"The app server did not answer on {served.url} within {ready_timeout_s:.0f} s.")
        time.sleep(0.1)


def wait_until(predicate: Any, timeout_s: float = 10, interval_s: float = 0.02) -> bool:
    """Poll `predicate()` until it is true or the time is up; returns whether it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


@contextlib.contextmanager
def served(app: Flask, **kwargs: Any) -> Iterator[Served]:
    """`with served(app) as server:` serve an app in a thread for the block."""
    running = serve_in_thread(app, **kwargs)
    try:
        yield running
    finally:
        running.stop()
