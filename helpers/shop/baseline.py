"""The naive endpoints: correct, readable, and slow in the ways the lessons measure and fix."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort
from sqlalchemy import select

from .db import get_session
from .models import Customer, Order, OrderLine, Product
from .orders import EXAMPLE_BODY, order_json, order_request, placed_at, unknown_customer, unknown_product
from .params import ID, example, int_arg
from .queries import NEWEST_FIRST, report_window, search_terms

__all__ = ["bp", "customer_page", "order_list", "place_order", "sales_report", "search"]

bp = Blueprint("baseline", __name__)


@bp.get(f"/customers/<{ID}:customer_id>")
@example("/customers/1")
def customer_page(customer_id: int) -> dict[str, Any]:
    """A customer and their orders, each with its number of lines."""
    session = get_session()
    customer = session.get(Customer, customer_id)
    if customer is None:
        abort(404, description=f"no customer with id {customer_id}")
    return {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "city": customer.city,
        "orders": [
            {
                "id": order.id,
                "status": order.status,
                "created_at": order.created_at.isoformat(),
                "total": order.total,
                "lines": len(order.lines),  # lazy load: one statement per order
            }
            for order in sorted(customer.orders, key=lambda o: (o.created_at, o.id), reverse=True)
        ],
    }


@bp.get("/orders")
@example("/orders?page=1&per_page=20")
def order_list() -> dict[str, Any]:
    """The newest orders, a page at a time, with customer names and line counts."""
    page = int_arg("page", 1)
    per_page = int_arg("per_page", 20, high=500)
    session = get_session()
    orders = session.scalars(
        select(Order).order_by(*NEWEST_FIRST).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return {
        "page": page,
        "orders": [
            {
                "id": order.id,
                "customer": order.customer.name,  # lazy load per order: the N+1
                "status": order.status,
                "created_at": order.created_at.isoformat(),
                "total": order.total,
                "lines": len(order.lines),  # and another one
            }
            for order in orders
        ],
    }


@bp.get("/search")
@example("/search?city=Lisbon&name=ana&limit=20")
def search() -> dict[str, Any]:
    """Customers by city and name fragment, ordered by name (filtered in Python)."""
    city, name, limit = search_terms()
    session = get_session()
    customers = session.scalars(select(Customer)).all()  # every customer, every column
    matches = [
        c
        for c in customers
        if (city is None or c.city == city) and (name is None or name.lower() in c.name.lower())
    ]
    matches.sort(key=lambda c: (c.name, c.id))
    return {
        "count": len(matches),
        "customers": [{"id": c.id, "name": c.name, "city": c.city} for c in matches[:limit]],
    }


@bp.get("/reports/sales")
@example("/reports/sales?days=7")
def sales_report() -> dict[str, Any]:
    """Revenue and units per product category over the last `days` days of orders."""
    session = get_session()
    days, conditions = report_window(session)
    if conditions is None:
        return {"days": days, "categories": []}
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    units: dict[str, int] = defaultdict(int)
    for line in session.scalars(select(OrderLine).join(OrderLine.order).where(*conditions)):
        category = line.product.category  # lazy load per distinct product
        revenue[category] += line.quantity * line.unit_price
        units[category] += line.quantity
    return {
        "days": days,
        "categories": [
            {"category": c, "revenue": revenue[c], "units": units[c]}
            for c in sorted(revenue, key=lambda c: (-revenue[c], c))
        ],
    }


@bp.post("/orders")
@example("/orders", body=EXAMPLE_BODY)
def place_order() -> tuple[dict[str, Any], int]:
    """Place an order with its lines (JSON body); answers 201 with the order."""
    wanted = order_request()
    session = get_session()
    customer = session.get(Customer, wanted.customer_id)
    if customer is None:
        unknown_customer(wanted.customer_id)
    prices: dict[int, Decimal] = {}
    for line in wanted.lines:
        product = session.get(Product, line.product_id)  # a SELECT per product
        if product is None:
            unknown_product(line.product_id)
        prices[line.product_id] = product.price
    created_at = placed_at()
    order = Order(
        customer_id=customer.id,
        status="pending",
        created_at=created_at,
        total=Decimal(0),
        shipping_address=customer.address,
        note=None,
    )
    session.add(order)
    session.commit()  # a commit per row: each one waits for the disk
    for line in wanted.lines:
        session.add(
            OrderLine(
                order_id=order.id,
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price=prices[line.product_id],
            )
        )
        session.commit()
    order.total = sum((line.quantity * prices[line.product_id] for line in wanted.lines), Decimal(0))
    session.commit()
    return order_json(order.id, wanted, prices, created_at=created_at, total=order.total), 201
