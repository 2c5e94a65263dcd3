"""The library's cache: one Flask-Caching object, configured per app like the shop's."""

from __future__ import annotations

from flask_caching import Cache

__all__ = ["cache"]

cache = Cache()
