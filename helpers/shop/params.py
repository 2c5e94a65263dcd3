"""Query-string parameters that answer 400 with a reason instead of a 500 or a silent default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, request

F = TypeVar("F", bound=Callable[..., Any])


def int_arg(name: str, default: int, *, low: int = 1, high: int = 10_000) -> int:
    """An integer query parameter within [low, high]."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        abort(400, description=f"{name} must be a whole number, got {raw!r}")
    if not low <= value <= high:
        abort(400, description=f"{name} must be between {low} and {high}, got {value}")
    return value


def float_arg(name: str, default: float | None) -> float | None:
    """A decimal query parameter."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        abort(400, description=f"{name} must be a number, got {raw!r}")


def choice_arg(name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
    """One of a fixed set of values."""
    raw = request.args.get(name) or default
    if raw is not None and raw not in choices:
        abort(400, description=f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def str_arg(name: str, *, max_length: int = 100) -> str | None:
    """A short free-text parameter."""
    raw = request.args.get(name, "").strip()
    if len(raw) > max_length:
        abort(400, description=f"{name} must be at most {max_length} characters")
    return raw or None


def example(path: str) -> Callable[[F], F]:
    """Attach an example URL to a view; the app's index lists it."""

    def mark(view: F) -> F:
        view.example = path  # type: ignore[attr-defined]
        return view

    return mark
