"""The shop's cache: one Flask-Caching object, configured per app from the course settings."""

from __future__ import annotations

from flask_caching import Cache

__all__ = ["cache"]

cache = Cache()
