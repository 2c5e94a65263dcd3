"""The course's own servers, started on demand and stopped at exit, and a latency proxy.

- `processes`: the servers' folder, socket folders, locks, who uses a server, stopping processes
- `postgres`: PostgreSQL's lifecycle (find the binaries, initialise, start, share, restart, stop)
- `databases`: create, drop, rename and look up databases on a PostgreSQL server
- `redis`: Redis's lifecycle, and a check that a Redis URL answers
- `latency`: `LatencyProxy`, which delays traffic to PostgreSQL per round trip
"""

from __future__ import annotations

from .databases import create_database, database_exists, drop_database, rename_database
from .latency import LatencyProxy
from .postgres import (
    PG_MISSING,
    postgres_log_path,
    postgres_socket_dir,
    postgres_url,
    restart_postgres,
    running_postgres_pids,
    stop_postgres,
)
from .processes import REDIS_PROGRAMS, remove_servers, servers_dir
from .redis import (
    REDIS_MISSING,
    check_redis,
    redis_executable,
    redis_socket,
    redis_url,
    running_redis_pids,
    stop_redis,
)

__all__ = [
    "PG_MISSING",
    "REDIS_MISSING",
    "REDIS_PROGRAMS",
    "LatencyProxy",
    "check_redis",
    "create_database",
    "database_exists",
    "drop_database",
    "postgres_log_path",
    "postgres_socket_dir",
    "postgres_url",
    "redis_executable",
    "redis_socket",
    "redis_url",
    "remove_servers",
    "rename_database",
    "restart_postgres",
    "running_postgres_pids",
    "running_redis_pids",
    "servers_dir",
    "stop_postgres",
    "stop_redis",
]
