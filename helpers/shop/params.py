"""Request parameters that answer 400 with a reason instead of a 500 or a silent default.

Every value is bounded to what the database can hold: a 23-digit id or a NUL byte is the client's mistake
(400 or 404), never the server's (500).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from flask import abort, request

__all__ = ["ID", "MAX_ID", "amount_arg", "choice_arg", "example", "int_arg", "number_arg", "str_arg"]

_F = TypeVar("_F", bound=Callable[..., Any])

# The largest id any shop table can hold: PostgreSQL's INTEGER (SQLite's is larger). Routes declare ids as
# <int(max=MAX_ID):customer_id>, so a larger number simply matches no route: 404, as for any missing id.
MAX_ID = 2**31 - 1
ID = f"int(max={MAX_ID})"
_MAX_AMOUNT = Decimal("1e9")  # money parameters: far above any total, far below what NUMERIC(12, 2) refuses


def _raw(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is not None and any(ord(ch) < 32 for ch in raw):
        # PostgreSQL refuses NUL in text, and no parameter of the shop needs a control character.
        abort(400, description=f"{name} must not contain control characters")
    return raw


def int_arg(name: str, default: int, *, low: int = 1, high: int = 10_000) -> int:
    """An integer query parameter within [low, high]."""
    raw = _raw(name)
    if raw is None or raw.strip() == "":
        return default
    if len(raw) > 20:
        abort(400, description=f"{name} must be a whole number between {low} and {high}")
    try:
        value = int(raw)
    except ValueError:
        abort(400, description=f"{name} must be a whole number, got {raw[:40]!r}")
    if not low <= value <= high:
        abort(400, description=f"{name} must be between {low} and {high}, got {value}")
    return value


def amount_arg(name: str, default: Decimal | None) -> Decimal | None:
    """A money amount: a finite decimal number within ±_MAX_AMOUNT."""
    raw = _raw(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = Decimal(raw.strip()) if len(raw) <= 40 else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or abs(value) > _MAX_AMOUNT:
        abort(400, description=f"{name} must be a number between -{_MAX_AMOUNT:,.0f} and {_MAX_AMOUNT:,.0f}")
    return value


def number_arg(name: str, default: float, *, low: float, high: float) -> float:
    """A finite decimal number within [low, high] (a percentage, a rate)."""
    raw = _raw(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw) if len(raw) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # also false for NaN
        abort(400, description=f"{name} must be a number between {low:g} and {high:g}")
    return value


def choice_arg(name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
    """One of a fixed set of values."""
    raw = _raw(name) or default
    if raw is not None and raw not in choices:
        abort(400, description=f"{name} must be one of {', '.join(choices)}, got {raw[:40]!r}")
    return raw


def str_arg(name: str, *, max_length: int = 100) -> str | None:
    """A short free-text parameter."""
    raw = (_raw(name) or "").strip()
    if len(raw) > max_length:
        abort(400, description=f"{name} must be at most {max_length} characters")
    return raw or None


def example(path: str, *, body: Any = None) -> Callable[[_F], _F]:
    """Attach an example URL to a view (and for a POST, an example JSON body); the app's index lists them."""

    def mark(view: _F) -> _F:
        view.example = path  # type: ignore[attr-defined]
        if body is not None:
            view.example_body = body  # type: ignore[attr-defined]
        return view

    return mark
