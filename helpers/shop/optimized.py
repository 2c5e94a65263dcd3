"""The optimized endpoints: the same answers as the baseline, with what lessons 02–06 teach applied.

Each view selects only the columns it returns (02), gets related rows in the same statement instead of one
per row (03), filters, orders, counts and limits in the database (03), relies on the indexes in `INDEXES`
(04–05), the report is cached on its own parameters and dropped by every placed order (06), and
`ENGINE_OPTIONS` sizes its pool (07).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, abort, request
from sqlalchemy import Engine, Index, MetaData, func, insert, select, text, tuple_

from .caching import cache
from .db import get_session
from .models import Base, Customer, Order, OrderLine, Product
from .orders import EXAMPLE_BODY, order_json, order_request, placed_at, unknown_customer, unknown_product
from .params import ID, MAX_ID, example, int_arg
from .queries import NEWEST_FIRST, report_window, search_terms

__all__ = [
    "CENT",
    "ENGINE_OPTIONS",
    "INDEXES",
    "bp",
    "create_indexes",
    "customer_page",
    "order_list",
    "place_order",
    "sales_report",
    "search",
]

CENT = Decimal("0.01")

bp = Blueprint("optimized", __name__)

# The pool the optimized app runs with (lesson 07), sized for `make app`'s waitress with 8 threads, one request
# per thread and one connection per request: 8 kept, none more; a 503 within 2 s if the pool is ever exhausted;
# a ping at checkout so a restarted database costs no failed request; connections renewed every 30 minutes.
ENGINE_OPTIONS = {
    "pool_size": 8,
    "max_overflow": 0,
    "pool_timeout": 2,
    "pool_pre_ping": True,
    "pool_recycle": 1800,
}

# name: (table, columns). Kept as names, not Index objects on the models: an Index on a model's column
# attaches to its table, and every dataset built afterwards in the process would get it.
INDEXES = {
    "ix_orders_customer_id_created_at": ("orders", ("customer_id", "created_at")),
    # The order list's order, id included: OFFSET pages walk it, keyset pages seek into it (lesson 05).
    "ix_orders_created_at_id": ("orders", ("created_at", "id")),
    "ix_order_lines_order_id": ("order_lines", ("order_id",)),
    # Search: one city's customers, already in the order the page lists them (a name fragment cannot seek).
    "ix_customers_city_name_id": ("customers", ("city", "name", "id")),
}


def create_indexes(engine: Engine) -> None:
    """Create the indexes the optimized views rely on (idempotent), then refresh planner statistics."""
    scratch = MetaData()
    with engine.begin() as conn:
        for name, (table_name, columns) in INDEXES.items():
            if table_name not in scratch.tables:
                Base.metadata.tables[table_name].to_metadata(scratch)
            table = scratch.tables[table_name]
            Index(name, *(table.c[c] for c in columns)).create(conn, checkfirst=True)
        conn.execute(text("ANALYZE"))


@bp.get(f"/customers/<{ID}:customer_id>")
@example("/customers/1")
def customer_page(customer_id: int) -> dict[str, Any]:
    """A customer and their orders, each with its number of lines."""
    session = get_session()
    customer = session.execute(
        select(Customer.id, Customer.name, Customer.email, Customer.city).where(Customer.id == customer_id)
    ).first()
    if customer is None:
        abort(404, description=f"no customer with id {customer_id}")
    orders = session.execute(
        select(Order.id, Order.status, Order.created_at, Order.total, func.count(OrderLine.id))
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.customer_id == customer_id)
        .group_by(Order.id, Order.status, Order.created_at, Order.total)
        .order_by(Order.created_at.desc(), Order.id.desc())
    )
    return {
        **customer._asdict(),
        "orders": [
            {"id": oid, "status": status, "created_at": created.isoformat(), "total": total, "lines": lines}
            for oid, status, created, total, lines in orders
        ],
    }


@bp.get("/orders")
@example("/orders?page=1&per_page=20")
def order_list() -> dict[str, Any]:
    """The newest orders, a page at a time, with customer names and line counts; `next` continues by keyset."""
    page = int_arg("page", 1)
    per_page = int_arg("per_page", 20, high=500)
    after = int_arg("after", 0, high=MAX_ID)  # keyset paging: the id of the last order of the previous page
    session = get_session()
    # The page is chosen first (an index range on created_at, id), then joined: counting lines of 20 orders,
    # not of every order.
    newest = select(Order.id).order_by(*NEWEST_FIRST).limit(per_page)
    if after:
        # Seek: orders strictly after the cursor in (created_at, id) order. The index jumps there, however
        # deep the page, where OFFSET walks past every skipped order. The cursor's created_at is read inside
        # the statement: sent back from Python, SQLite would compare it as differently formatted text.
        cursor_created_at = select(Order.created_at).where(Order.id == after).scalar_subquery()
        newest = newest.where(tuple_(Order.created_at, Order.id) < tuple_(cursor_created_at, after))
    else:
        newest = newest.offset((page - 1) * per_page)
    chosen = newest.subquery()
    rows = session.execute(
        select(Order.id, Customer.name, Order.status, Order.created_at, Order.total, func.count(OrderLine.id))
        .join(chosen, chosen.c.id == Order.id)
        .join(Order.customer)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .group_by(Order.id, Customer.name, Order.status, Order.created_at, Order.total)
        .order_by(*NEWEST_FIRST)
    )
    orders = [
        {"id": oid, "customer": name, "status": status, "created_at": created.isoformat(), "total": total,
         "lines": lines}
        for oid, name, status, created, total, lines in rows
    ]  # fmt: skip
    # A full page may have more after it: its last order is the cursor for the next one.
    next_cursor = orders[-1]["id"] if len(orders) == per_page else None
    if after:
        if not orders and session.get(Order, after) is None:  # an empty page: the end, or a made-up cursor?
            abort(404, description=f"no order with id {after}: pass the 'next' value of the previous page")
        return {"after": after, "orders": orders, "next": next_cursor}
    return {"page": page, "orders": orders, "next": next_cursor}


@bp.get("/search")
@example("/search?city=Lisbon&name=ana&limit=20")
def search() -> dict[str, Any]:
    """Customers by city and name fragment, ordered by name (filtered in the database)."""
    city, name, limit = search_terms()
    conditions = []
    if city is not None:
        conditions.append(Customer.city == city)
    if name is not None:
        # A fragment anywhere in the name ('%an%') cannot seek in a B-tree index: it is checked on each of the
        # city's rows, which ix_customers_city_name_id finds and already holds in (name, id) order (lesson 05).
        # autoescape: a learner's '%' or '_' is a character to find, as in the Python version.
        conditions.append(func.lower(Customer.name).contains(name.lower(), autoescape=True))
    session = get_session()
    count = session.scalar(select(func.count()).select_from(Customer).where(*conditions))
    matches = session.execute(
        select(Customer.id, Customer.name, Customer.city)
        .where(*conditions)
        .order_by(Customer.name, Customer.id)
        .limit(limit)
    )
    return {"count": count, "customers": [row._asdict() for row in matches]}


_REPORTS_GENERATION = "report:generation"  # bumped by every placed order: the cached reports' generation


def _report_cache_key() -> str:
    """The report's key: the reports' generation, then its own three parameters, read raw (a bad value simply
    misses, then answers 400).

    Cheaper than query_string=True (no sorting and hashing of the whole query string), and a parameter the
    report does not read, ?utm=… say, neither splits the cache nor fills it with copies. A placed order bumps the
    generation (lesson 06): every report cached before it is unreachable at once, and expires unread.
    """
    args = request.args
    generation = cache.get(_REPORTS_GENERATION) or 0
    return f"report:{generation}:" + "|".join(
        args.get(name, "").strip() for name in ("days", "status", "min_total")
    )


@bp.get("/reports/sales")
@example("/reports/sales?days=7")
@cache.cached(timeout=60, make_cache_key=lambda *args, **kwargs: _report_cache_key())
def sales_report() -> dict[str, Any]:
    """Revenue and units per product category over the last `days` days of orders (cached for a minute)."""
    session = get_session()
    days, conditions = report_window(session)
    if conditions is None:
        return {"days": days, "categories": []}
    revenue = func.sum(OrderLine.quantity * OrderLine.unit_price)
    query = (
        select(Product.category, revenue, func.sum(OrderLine.quantity))
        .join(OrderLine.order)
        .join(OrderLine.product)
        .where(*conditions)
        .group_by(Product.category)
    )
    # SQLite sums money as floating point: round back to cents (PostgreSQL's NUMERIC sum is exact already).
    rows = [
        (category, Decimal(total).quantize(CENT), int(units)) for category, total, units in session.execute(query)
    ]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return {"days": days, "categories": [{"category": c, "revenue": r, "units": u} for c, r, u in rows]}


@bp.after_app_request  # after every request of the app, whichever blueprint served it (lesson 06)
def _forget_reports(response: Response) -> Response:
    """A placed order is in every report from now on: bump the generation, and the cached reports go unread."""
    if request.method == "POST" and request.path == "/orders" and response.status_code == 201:
        cache.cache.inc(_REPORTS_GENERATION)  # an atomic INCR on Redis: two orders at once make two generations
    return response


@bp.post("/orders")
@example("/orders", body=EXAMPLE_BODY)
def place_order() -> tuple[dict[str, Any], int]:
    """Place an order with its lines (JSON body); answers 201 with the order (4 statements, 1 commit)."""
    wanted = order_request()
    session = get_session()
    address = session.scalar(select(Customer.address).where(Customer.id == wanted.customer_id))
    if address is None:
        unknown_customer(wanted.customer_id)
    # Every price in one SELECT … IN, however many lines.
    prices = dict(
        session.execute(select(Product.id, Product.price).where(Product.id.in_(wanted.product_ids))).all()
    )
    for line in wanted.lines:
        if line.product_id not in prices:
            unknown_product(line.product_id)
    created_at = placed_at()
    total = sum((line.quantity * prices[line.product_id] for line in wanted.lines), Decimal(0))
    order_id: int = session.execute(
        insert(Order)
        .values(
            customer_id=wanted.customer_id,
            status="pending",
            created_at=created_at,
            total=total,
            shipping_address=address,
            note=None,
        )
        .returning(Order.id)
    ).scalar_one()
    # Every line in one bulk INSERT, then one commit for the whole order.
    session.execute(
        insert(OrderLine),
        [
            {"order_id": order_id, "product_id": line.product_id, "quantity": line.quantity,
             "unit_price": prices[line.product_id]}
            for line in wanted.lines
        ],
    )  # fmt: skip
    session.commit()
    return order_json(order_id, wanted, prices, created_at=created_at, total=total), 201
