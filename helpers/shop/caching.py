"""The shop's cache: one Flask-Caching object, configured per app from the course settings."""

from __future__ import annotations

from typing import Any

from flask_caching import Cache

from ..config import Settings

cache = Cache()


def cache_config(settings: Settings) -> dict[str, Any]:
    """Flask-Caching settings for COURSE_CACHE: a per-process SimpleCache, or a shared Redis.

    Spelled out either way: with no CACHE_TYPE at all, Flask-Caching silently uses NullCache and caches
    nothing (lesson 05 shows it).
    """
    if settings.cache == "redis":
        from ..servers import check_redis, redis_url

        url = settings.cache_redis_url or redis_url()
        check_redis(url)
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url}
    return {"CACHE_TYPE": "SimpleCache"}
