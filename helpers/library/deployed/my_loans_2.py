"""GET /me/loans as deployed (one version of it)."""

from __future__ import annotations

from flask import abort, jsonify, request
from flask.typing import ResponseReturnValue

from ...shop.db import get_session
from ..caching import cache
from ..models import Member
from ..params import member_id

__all__ = ["my_loans"]


@cache.cached(timeout=60, key_prefix=lambda: f"me/{request.headers.get('X-Member-Id', '')}")  # one per member
def my_loans() -> ResponseReturnValue:
    """The signed-in member's page: the books they have out, and the last 10 they returned."""
    member = get_session().get(Member, member_id())
    if member is None:
        abort(404, description="no such member")
    loans = sorted(member.loans, key=lambda loan: (loan.borrowed_at, loan.id), reverse=True)
    page = [
        {
            "id": loan.id,
            "book": loan.book.title,
            "borrowed": loan.borrowed_at.isoformat(),
            "due": loan.due_at.isoformat(),
            "status": loan.status,
        }
        for loan in loans
    ]
    out = [{k: v for k, v in item.items() if k != "status"} for item in page if item["status"] == "out"]
    history = [{k: v for k, v in item.items() if k != "status"} for item in page if item["status"] != "out"]
    return jsonify(member=member.id, out=out, history=history[:10])
