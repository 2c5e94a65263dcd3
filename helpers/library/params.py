"""Reading a request's arguments: a bad one is a 400 that says which and why, never a 500."""

from __future__ import annotations

from flask import abort, request

__all__ = ["MAX_ID", "int_arg", "member_id"]

MAX_ID = 2**31 - 1  # the largest id either database stores in an INTEGER column


def int_arg(name: str, default: int) -> int:
    """The query-string argument `name` as a whole number from 0 to MAX_ID (`default` when absent)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) > MAX_ID:
        abort(400, description=f"{name} must be a whole number from 0 to {MAX_ID}, not {raw!r}")
    return int(raw)


def member_id() -> int:
    """The signed-in member, from the X-Member-Id header the library's gateway sets after login."""
    raw = request.headers.get("X-Member-Id", "")
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        abort(401, description="sign in first: the X-Member-Id header names the member")
    return int(raw)
