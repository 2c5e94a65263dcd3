"""The body of `POST /orders`, read and checked once for every version of the endpoint.

    wanted = order_request()        # 400/413/415 with a reason, or a valid OrderRequest
    wanted.customer_id, [(line.product_id, line.quantity) for line in wanted.lines]

Everything a client sends is bounded before the database sees it: the body's size, the number of lines,
every id (what PostgreSQL's INTEGER holds) and every quantity. Unknown ids are the view's business: they
answer 422 (`unknown_customer`, `unknown_product`), with the same words in every version of the view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NoReturn

from flask import abort, request
from werkzeug.exceptions import RequestEntityTooLarge

from .params import MAX_ID

__all__ = [
    "EXAMPLE_BODY",
    "MAX_LINES",
    "MAX_QUANTITY",
    "LineRequest",
    "OrderRequest",
    "order_json",
    "order_request",
    "placed_at",
    "unknown_customer",
    "unknown_product",
]

_MAX_BODY_BYTES = 16 * 1024  # a 50-line order is about 2 KB of JSON
MAX_LINES = 50
MAX_QUANTITY = 1000
EXAMPLE_BODY = {"customer_id": 1, "lines": [{"product_id": 3, "quantity": 2}, {"product_id": 7, "quantity": 1}]}
_EXAMPLE = json.dumps(EXAMPLE_BODY)


@dataclass(frozen=True)
class LineRequest:
    """One line of an order as the client asked for it."""

    product_id: int
    quantity: int


@dataclass(frozen=True)
class OrderRequest:
    """A checked `POST /orders` body: a customer and 1 to MAX_LINES lines."""

    customer_id: int
    lines: tuple[LineRequest, ...]

    @property
    def product_ids(self) -> set[int]:
        return {line.product_id for line in self.lines}


def _refuse(reason: str, code: int = 400) -> NoReturn:
    abort(code, description=reason)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")  # NaN and Infinity: Python's json accepts them, JSON does not


def _body() -> Any:
    if not request.is_json:
        _refuse(f"send the order as JSON (Content-Type: application/json), e.g. {_EXAMPLE}", 415)
    request.max_content_length = _MAX_BODY_BYTES  # a larger body is refused before it is read
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        _refuse(
            f"the body is larger than {_MAX_BODY_BYTES // 1024} KB: an order has at most {MAX_LINES} lines", 413
        )
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # malformed, not UTF-8, NaN, a 5,000-digit number, [[[[…]]]]
        _refuse(f"the body is not valid JSON: send an object like {_EXAMPLE}")


def _fields(value: Any, where: str, wanted: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        _refuse(f"{where} must be a JSON object with {' and '.join(wanted)}")
    for name in wanted:
        if name not in value:
            _refuse(f"{where} lacks {name}")
    extra = sorted(str(key) for key in value if key not in wanted)
    if extra:
        _refuse(f"{where} has an unknown field {extra[0][:40]!r}: send only {' and '.join(wanted)}")
    return value


def _whole(value: Any, name: str, high: int) -> int:
    # bool is an int to Python (True == 1); a client that sends true meant something else.
    if type(value) is not int:
        _refuse(f"{name} must be a whole number, got {json.dumps(value)[:40]}")
    if not 1 <= value <= high:
        _refuse(f"{name} must be between 1 and {high}, got {value}")
    return value


def order_request() -> OrderRequest:
    """The request's JSON body as an OrderRequest, or abort with 400, 413 or 415 and the reason."""
    body = _fields(_body(), "the body", ("customer_id", "lines"))
    customer_id = _whole(body["customer_id"], "customer_id", MAX_ID)
    lines = body["lines"]
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
        _refuse(f"lines must be a list of 1 to {MAX_LINES} lines")
    checked = []
    for i, line in enumerate(lines):
        fields = _fields(line, f"lines[{i}]", ("product_id", "quantity"))
        checked.append(
            LineRequest(
                product_id=_whole(fields["product_id"], f"lines[{i}].product_id", MAX_ID),
                quantity=_whole(fields["quantity"], f"lines[{i}].quantity", MAX_QUANTITY),
            )
        )
    return OrderRequest(customer_id, tuple(checked))


def unknown_customer(customer_id: int) -> NoReturn:
    """422: the body is well formed, but names no customer of the shop."""
    _refuse(f"no customer with id {customer_id}", 422)


def unknown_product(product_id: int) -> NoReturn:
    """422: a line names no product of the shop (the first such line, in the order sent)."""
    _refuse(f"no product with id {product_id}", 422)


def placed_at() -> datetime:
    """When an order is placed: now, in UTC, to the second (the dataset's timestamps are naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def order_json(
    order_id: int,
    wanted: OrderRequest,
    prices: dict[int, Decimal],
    *,
    created_at: datetime,
    total: Decimal,
) -> dict[str, Any]:
    """The placed order as every version of the endpoint answers it (money stays Decimal)."""
    return {
        "id": order_id,
        "customer_id": wanted.customer_id,
        "status": "pending",
        "created_at": created_at.isoformat(),
        "total": total,
        "lines": [
            {"product_id": line.product_id, "quantity": line.quantity, "unit_price": prices[line.product_id]}
            for line in wanted.lines
        ],
    }
