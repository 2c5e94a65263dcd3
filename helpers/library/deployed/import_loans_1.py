"""POST /loans/import as deployed (one version of it)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ...shop.db import get_session
from ..models import Loan
from ..spec import loan_rows

__all__ = ["import_loans"]


def import_loans() -> ResponseReturnValue:
    """Import returned loans from a partner branch: {"loans": [{"book_id", "member_id", "borrowed_at"}, ...]}."""
    session = get_session()
    imported = 0
    for row in loan_rows(request.get_json(silent=True)):
        session.add(Loan(**row))
        session.commit()  # each loan saved as soon as it is read: a bad row later loses nothing before it
        imported += 1
    return jsonify(imported=imported), 201
