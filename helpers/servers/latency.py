"""A TCP proxy on loopback that adds latency per round trip, to show what a network does to chatty code."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from .postgres import PG_PORT, PG_USER, postgres_socket_dir, postgres_url

__all__ = ["Latency", "LatencyProxy"]


class Latency(ABC):
    """Delay added to a database's round trips: `delay_ms` (changeable while it runs), `start()`, `close()`, and
    `with` for both."""

    delay_ms: float

    @abstractmethod
    def start(self) -> Self:
        """Begin delaying (again: nothing more); return self."""

    @abstractmethod
    def close(self) -> None:
        """Stop delaying."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LatencyProxy(Latency):
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
                self.target = postgres_socket_dir() / f".s.PGSQL.{PG_PORT}"
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
