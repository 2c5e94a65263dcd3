"""Exercises for lesson 05 · Caching: a key per page, a key per customer, invalidation after a write, a hit ratio,
and the sales report cached per query string (improve the app).

Every check builds the learner's blueprint into an app whose cache starts empty (`cachelab.temporary_app`), asks
it and an uncached reference the same requests, and reads what the cache did from the response headers
(`X-Statements: 0` is a hit) and from the keys it stored.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import numpy as np
from flask import Blueprint, Flask, request, url_for
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update
from werkzeug.exceptions import HTTPException

from ..course import Course
from ..measure.harness import first_difference
from ..shop.caching import cache
from ..shop.db import get_session
from ..shop.models import Customer, Order, OrderLine, Product, Review
from ..shop.params import int_arg
from ..topics.caching import current_customer_id, stored_keys, temporary_app, with_own_caches
from .app_task import AppTask, Call
from .core import Incorrect, LegacyExercise

Q4_THRESHOLD = 20  # entries in q4's SimpleCache: fewer than the customers its traffic visits
Q4_REQUESTS = 300

# ---------------------------------------------------------------------- references
q1_reference = Blueprint("q1_reference", __name__)


@q1_reference.get("/products/<int:product_id>/reviews")
@cache.cached(timeout=300, query_string=True)  # the key: the path (which product) + the sorted query (which page)
def product_reviews(product_id: int) -> dict[str, Any]:
    page = int_arg("page", 1)
    rows = get_session().execute(
        select(Review.id, Review.rating)
        .where(Review.product_id == product_id)
        .order_by(Review.id)
        .limit(5)
        .offset((page - 1) * 5)
    )
    return {"product": product_id, "page": page, "reviews": [row._asdict() for row in rows]}


def my_orders_key() -> str:
    """One entry per signed-in customer and page size (a callable key_prefix is the whole key)."""
    return f"me/orders/{current_customer_id()}/{int_arg('limit', 5, high=50)}"


q2_reference = Blueprint("q2_reference", __name__)


@q2_reference.get("/me/orders")
@cache.cached(timeout=300, key_prefix=my_orders_key)
def my_orders() -> dict[str, Any]:
    customer_id = current_customer_id()
    limit = int_arg("limit", 5, high=50)
    rows = get_session().execute(
        select(Order.id, Order.status, Order.total)
        .where(Order.customer_id == customer_id)
        .order_by(Order.id.desc())
        .limit(limit)
    )
    return {"customer": customer_id, "orders": [row._asdict() for row in rows]}


q3_reference = Blueprint("q3_reference", __name__)


@q3_reference.get("/customers/<int:customer_id>/contact")
@cache.cached(timeout=300)
def customer_contact(customer_id: int) -> dict[str, Any]:
    row = (
        get_session()
        .execute(select(Customer.id, Customer.name, Customer.email).where(Customer.id == customer_id))
        .one()
    )
    return row._asdict()


@q3_reference.post("/customers/<int:customer_id>/email")
def change_email(customer_id: int) -> dict[str, Any]:
    session = get_session()
    session.execute(update(Customer).where(Customer.id == customer_id).values(email=request.get_json()["email"]))
    session.commit()
    # Drop this customer's entry only: the key the GET view stored, rebuilt from its own path.
    cache.delete_cached(customer_contact, path=url_for(".customer_contact", customer_id=customer_id))
    return {"id": customer_id}


q4_views = Blueprint("q4_views", __name__)


@q4_views.get("/customers/<int:customer_id>/name")
@cache.cached(timeout=300)
def customer_name(customer_id: int) -> dict[str, Any]:
    """The page q4's traffic visits: one primary-key lookup, cached per path."""
    name = get_session().scalar(select(Customer.name).where(Customer.id == customer_id))
    return {"id": customer_id, "name": name}


def hit_ratio(client: FlaskClient, urls: Sequence[str]) -> float:
    """Reference for q4: the share of requests answered from the cache, i.e. that ran no SQL statement."""
    hits = sum(client.get(url).headers["X-Statements"] == "0" for url in urls)
    return hits / len(urls)


def _source(*objects: Any) -> str:
    return "\n\n".join(inspect.getsource(inspect.unwrap(obj)) for obj in objects)


# ---------------------------------------------------------------------- replaying requests
@dataclass(frozen=True)
class _Get:
    """One GET a check sends, as a signed-in customer or not."""

    path: str
    customer: int | None = None

    def send(self, client: FlaskClient) -> Any:
        headers = {"X-Customer-Id": str(self.customer)} if self.customer is not None else {}
        return client.get(self.path, headers=headers)

    def __str__(self) -> str:
        return f"GET {self.path}" + (f" as customer {self.customer}" if self.customer is not None else "")


def _uncached(view: Any, rule: str) -> Blueprint:
    """The reference view without its cache, at the same rule: what every answer should be."""
    truth = Blueprint(f"truth_{secrets.token_hex(4)}", __name__)
    truth.add_url_rule(rule, view_func=view.uncached)
    return truth


def _require_route(app: Flask, views: Any, path: str, method: str = "GET") -> None:
    adapter = app.url_map.bind("localhost")
    try:
        adapter.match(path.split("?")[0], method=method)
    except HTTPException:
        raise Incorrect(
            f"your blueprint does not serve {method} {path.split('?')[0]}: keep the route decorator of the starter"
        ) from None


def _statements(response: Any) -> int:
    return int(response.headers.get("X-Statements", 0))


def _replay(app: Flask, truth: Flask, gets: Sequence[_Get], keep_apart: str) -> list[int]:
    """Send `gets` to the learner's app and to the uncached truth; answers must agree. Returns statements run.

    An answer equal to an *earlier, different* request's answer is the cache-key mistake: say so.
    """
    client, expected_client = app.test_client(), truth.test_client()
    answered: list[tuple[_Get, Any]] = []
    statements = []
    for get in gets:
        expected, got = get.send(expected_client), get.send(client)
        if got.status_code != expected.status_code:
            raise Incorrect(f"{get} answered {got.status_code}, expected {expected.status_code}")
        body, want = got.get_json(silent=True), expected.get_json(silent=True)
        if body != want:
            earlier = next((g for g, answer in answered if answer == body and g != get), None)
            if earlier is not None:
                raise Incorrect(f"{get} got the answer cached for {earlier}: {keep_apart}")
            raise Incorrect(f"{get}: {first_difference(want, body, 'answer')}")
        answered.append((get, want))
        statements.append(_statements(got))
    return statements


def _served_from_cache(gets: Sequence[_Get], statements: Sequence[int]) -> None:
    """The last request repeats the first: it must have run no statement."""
    if statements[-1]:
        raise Incorrect(
            f"the repeated {gets[-1]} ran {statements[-1]} statement{'s' if statements[-1] > 1 else ''}: "
            "it was not answered from the cache"
        )


def _keys_text(keys: Sequence[str]) -> str:
    return ", ".join(repr(k if len(k) <= 40 else k[:37] + "...") for k in keys)


# ---------------------------------------------------------------------- the checks
def _ids(course: Course) -> SimpleNamespace:
    """The rows the checks use: the most reviewed products and the busiest customers (on any size)."""
    with course.session() as session:
        products = list(
            session.scalars(
                select(Review.product_id)
                .group_by(Review.product_id)
                .order_by(func.count().desc(), Review.product_id)
                .limit(2)
            )
        )
        customers = list(
            session.scalars(
                select(Order.customer_id)
                .group_by(Order.customer_id)
                .order_by(func.count().desc(), Order.customer_id)
                .limit(2)
            )
        )
        first_two = list(session.scalars(select(Customer.id).order_by(Customer.id).limit(2)))
    return SimpleNamespace(products=products, customers=customers, contacts=first_two)


def _q4_traffic(course: Course) -> list[str]:
    """Q4_REQUESTS name pages of customers, drawn as often as each customer orders (seeded)."""
    with course.session() as session:
        counts = session.execute(select(Order.customer_id, func.count()).group_by(Order.customer_id)).all()
    ids = np.array([customer for customer, _ in counts])
    weights = np.array([n for _, n in counts], dtype=float)
    drawn = np.random.default_rng(5).choice(ids, size=Q4_REQUESTS, p=weights / weights.sum())
    return [f"/customers/{customer}/name" for customer in drawn.tolist()]


@contextmanager
def _new_order(course: Course) -> Iterator[int]:
    """An order with one line, placed at the newest order's time (inside every report window); removed after."""
    with course.session() as session:
        newest = session.scalar(select(func.max(Order.created_at)))
        price = session.scalar(select(Product.price).where(Product.id == 1)) or Decimal("1.00")
        order = Order(customer_id=1, status="paid", created_at=newest, total=3 * price, shipping_address="-")
        session.add(order)
        session.flush()
        session.add(OrderLine(order_id=order.id, product_id=1, quantity=3, unit_price=price))
        session.commit()
        order_id = order.id
    try:
        yield order_id
    finally:
        with course.session() as session:
            session.execute(delete(OrderLine).where(OrderLine.order_id == order_id))
            session.execute(delete(Order).where(Order.id == order_id))
            session.commit()


def exercises(course: Course, lab: Course) -> SimpleNamespace:
    """The lesson's exercises: q1, q2 and q4 read `course`; q3 and the improve-the-app task write to `lab`."""
    ids = _ids(course)

    def check_q1(views: Any) -> str:
        p1, p2 = ids.products
        gets = [
            _Get(f"/products/{p1}/reviews?page=1"),
            _Get(f"/products/{p1}/reviews?page=2"),
            _Get(f"/products/{p2}/reviews?page=1"),
            _Get(f"/products/{p1}/reviews?page=1"),
        ]
        with (
            temporary_app(course, views, TESTING=True) as app,
            temporary_app(course, _uncached(product_reviews, "/products/<int:product_id>/reviews")) as truth,
        ):
            _require_route(app, views, gets[0].path)
            statements = _replay(app, truth, gets, "the key must hold the product and the page")
            _served_from_cache(gets, statements)
            keys = stored_keys(app)
        return f"3 different pages, {len(keys)} keys ({_keys_text(keys)}); the repeated request ran no statement."

    def check_q2(views: Any) -> str:
        a, b = ids.customers
        gets = [
            _Get("/me/orders?limit=5", a),
            _Get("/me/orders?limit=5", b),
            _Get("/me/orders?limit=10", a),
            _Get("/me/orders?limit=5", a),
        ]
        with (
            temporary_app(course, views, TESTING=True) as app,
            temporary_app(course, _uncached(my_orders, "/me/orders")) as truth,
        ):
            _require_route(app, views, gets[0].path)
            statements = _replay(app, truth, gets, "the key must hold who is signed in and the page size")
            _served_from_cache(gets, statements)
            keys = stored_keys(app)
        return f"each customer and page size has its own entry ({_keys_text(keys)})."

    def check_q3(views: Any) -> str:
        c1, c2 = ids.contacts
        page1, page2 = f"/customers/{c1}/contact", f"/customers/{c2}/contact"
        with lab.session() as session:
            old_email = session.scalar(select(Customer.email).where(Customer.id == c1))
        new_email = f"changed-{secrets.token_hex(3)}@example.com"
        with temporary_app(lab, views, TESTING=True) as app:
            _require_route(app, views, page1)
            _require_route(app, views, f"/customers/{c1}/email", "POST")
            client = app.test_client()
            try:
                client.get(page1)
                client.get(page2)
                if _statements(client.get(page2)):
                    raise Incorrect(f"a second GET {page2} ran statements: keep the GET view cached")
                posted = client.post(f"/customers/{c1}/email", json={"email": new_email})
                if posted.status_code != 200:
                    raise Incorrect(f"POST /customers/{c1}/email answered {posted.status_code}")
                after = client.get(page1)
                if (after.get_json(silent=True) or {}).get("email") != new_email:
                    raise Incorrect(
                        f"after the POST, GET {page1} still showed the old email (the cached entry): delete that "
                        "entry in the POST view, with the key the GET view stored"
                    )
                if _statements(client.get(page2)):
                    raise Incorrect(
                        f"customer {c2}'s cached page was dropped too: delete only the entry of the customer who "
                        "changed (cache.clear() empties the whole cache)"
                    )
                keys = stored_keys(app)
            finally:
                with lab.session() as session:
                    session.execute(update(Customer).where(Customer.id == c1).values(email=old_email))
                    session.commit()
        return f"the changed page is fresh and the other stays cached ({_keys_text(keys)})."

    def check_q4(answer: Any) -> str:
        if not callable(answer):
            raise Incorrect("pass your function: ex.q4.check(hit_ratio)")
        urls = _q4_traffic(course)
        config = {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": Q4_THRESHOLD}
        with temporary_app(course, q4_views, **config) as app:
            expected = hit_ratio(app.test_client(), urls)
        with temporary_app(course, q4_views, **config) as app:
            got = answer(app.test_client(), urls)
        if isinstance(got, bool) or not isinstance(got, int | float | np.floating) or not 0 <= got <= 1:
            raise Incorrect(f"return the share of hits, between 0 and 1 (hits / requests), not {got!r:.40}")
        got = float(got)
        unlimited = 1 - len(set(urls)) / len(urls)
        if abs(got - expected) > 1e-9:
            if abs(got - unlimited) < 1e-9:
                raise Incorrect(
                    f"{got:.1%} is what a cache that never evicts would serve (1 − distinct/requests); this one "
                    f"holds {Q4_THRESHOLD} entries: count the responses that ran no statement"
                )
            if got == 1:
                raise Incorrect("every request counted as a hit: a hit is a response that ran no statement")
            raise Incorrect(f"your function says {got:.1%} of requests were hits, the responses {expected:.1%}")
        return (
            f"{expected:.1%} of {len(urls)} requests were hits with {Q4_THRESHOLD} entries; a cache that never "
            f"evicted would have served {unlimited:.1%}."
        )

    own_lab = with_own_caches(lab)

    def check_cache(app: Flask) -> str:
        """The improve-the-app task's cache metric: hits, a key per query string, fresh after an invalidation."""
        client = app.test_client()
        path = "/reports/sales?days=14"
        first, second = client.get(path), client.get(path)
        if _statements(second):
            raise Incorrect(
                f"a second identical GET {path} ran {_statements(second)} statements: it was not answered from "
                "the cache"
            )
        before = stored_keys(app)
        if not before:
            raise Incorrect("the app's cache holds no entry: cache the view with cache.cached(...) from the kit")
        client.get("/reports/sales?days=21")
        after = stored_keys(app)
        if len(after) <= len(before):
            raise Incorrect("?days=21 added no entry to the cache: each query string needs a key of its own")
        baseline = lab.app()
        try:
            with _new_order(lab):
                with app.app_context():
                    cache.clear()  # the invalidation a write would do
                expected = baseline.test_client().get(path).get_json()
                if client.get(path).get_json() != expected:
                    raise Incorrect(
                        "after a new order and cache.clear(), your report still showed the old totals: keep it in "
                        "the app's cache (cache.cached), not in a dict or functools.lru_cache of your own"
                    )
        finally:
            baseline.extensions["engine"].dispose()
            with app.app_context():
                cache.clear()  # it holds the report with the order that was just removed
        return (
            f"Your cached report gives the baseline's answers; a repeated request ran no statement (the first "
            f"ran {_statements(first)}), two query strings made two entries, and after cache.clear() a new order "
            "showed."
        )

    improve = AppTask(
        lesson="05",
        endpoint="sales_report",
        rule="/reports/sales",
        calls=[
            Call("/reports/sales?days=7"),
            Call("/reports/sales?days=30"),
            Call("/reports/sales?days=30&status=paid"),
            Call("/reports/sales?status=paid&days=30"),
            Call("/reports/sales?days=90&min_total=100"),
            Call("/reports/sales?days=abc"),
        ],
        timed=Call("/reports/sales?days=30"),
        budget=2,
        hint_text=(
            "cache.cached(timeout=60, query_string=True) under the route decorator: the key is then the path plus "
            "a hash of the sorted query string, so ?days=7 and ?days=30 get entries of their own while "
            "?days=30&status=paid and ?status=paid&days=30 share one."
        ),
        course=own_lab,
        extra=check_cache,
    )

    return SimpleNamespace(
        q1=LegacyExercise(
            "A key per product and page",
            check_q1,
            "The page number is in the query string, which cached() leaves out of its key by default: "
            "cache.cached(timeout=300, query_string=True) keys on the path and the sorted query string.",
            product_reviews,
        ),
        q2=LegacyExercise(
            "A key per signed-in customer",
            check_q2,
            "The path /me/orders is the same for everyone. Give key_prefix a function (no arguments) returning a "
            "string with current_customer_id() and the limit in it: a callable key_prefix is the whole key.",
            _source(my_orders_key, my_orders),
        ),
        q3=LegacyExercise(
            "Fresh after a write",
            check_q3,
            "In the POST view, after the commit: cache.delete_cached(customer_contact, "
            "path=url_for('.customer_contact', customer_id=customer_id)), or cache.delete() of the key the GET "
            "view stored ('view/' + its path).",
            _source(change_email),
        ),
        q4=LegacyExercise(
            "A hit ratio from the responses",
            check_q4,
            "Send each URL once with client.get(url); a response that ran no SQL statement "
            "(response.headers['X-Statements'] == '0') came from the cache. Return hits / len(urls).",
            hit_ratio,
        ),
        improve=improve,
        products=ids.products,
        customers=ids.customers,
    )
