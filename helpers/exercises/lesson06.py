"""Exercises for lesson 06 · Caching: a key per page, a key per customer, invalidation after a write, a hit ratio,
and the sales report cached per query string (improve the app).

Every check builds the learner's blueprint into an app whose cache starts empty (`caching.temporary_app`), asks
it and an uncached truth the same requests, and reads what the cache did from the response headers
(`X-Statements: 0` is a hit) and from the keys it stored.

A question's solution is its starter cell with the blank filled in (the learner's cell, as it should end up); the
truth the checks compare answers with is written here once more, uncached and in a form of its own.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update
from werkzeug.exceptions import HTTPException

from ..course import Course
from ..db import make_engine
from ..measure.harness import first_difference
from ..shop.caching import cache
from ..shop.db import get_session
from ..shop.models import Customer, Order, OrderLine, Product, Review
from ..shop.params import int_arg
from ..topics.caching import (
    current_customer_id,
    popularity,
    stored_keys,
    temporary_app,
    traffic,
    with_own_caches,
)
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, Question

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "STARTER_Q1",
    "STARTER_Q2",
    "STARTER_Q3",
    "STARTER_Q4",
    "Lesson06Exercises",
    "exercises",
    "hit_ratio",
    "improve_task",
]

_Q4_THRESHOLD = 20  # entries in q4's SimpleCache: fewer than the customers its traffic visits
_Q4_REQUESTS = 300

# ---------------------------------------------------------------------- the starter cells, verbatim
STARTER_Q1 = """\
q1_views = Blueprint("q1_views", __name__)


@q1_views.get("/products/<int:product_id>/reviews")
@cache.cached(____)
def product_reviews(product_id):
    page = int_arg("page", 1)
    rows = get_session().execute(
        select(Review.id, Review.rating)
        .where(Review.product_id == product_id)
        .order_by(Review.id)
        .limit(5)
        .offset((page - 1) * 5)
    )
    return {"product": product_id, "page": page, "reviews": [row._asdict() for row in rows]}


ex.q1.check(q1_views)"""

STARTER_Q2 = """\
q2_views = Blueprint("q2_views", __name__)


@q2_views.get("/me/orders")
@cache.cached(timeout=300, key_prefix=____)
def my_orders():
    customer_id = current_customer_id()
    limit = int_arg("limit", 5, high=50)
    rows = get_session().execute(
        select(Order.id, Order.status, Order.total)
        .where(Order.customer_id == customer_id)
        .order_by(Order.id.desc())
        .limit(limit)
    )
    return {"customer": customer_id, "orders": [row._asdict() for row in rows]}


ex.q2.check(q2_views)"""

STARTER_Q3 = """\
q3_views = Blueprint("q3_views", __name__)


@q3_views.get("/customers/<int:customer_id>/contact")
@cache.cached(timeout=300)
def customer_contact(customer_id):
    statement = select(Customer.id, Customer.name, Customer.email).where(Customer.id == customer_id)
    return get_session().execute(statement).one()._asdict()


@q3_views.post("/customers/<int:customer_id>/email")
def change_email(customer_id):
    session = get_session()
    session.execute(update(Customer).where(Customer.id == customer_id).values(email=request.get_json()["email"]))
    session.commit()
    ____  # the next GET of this customer's contact page must show the new email
    return {"id": customer_id}


ex.q3.check(q3_views)"""

STARTER_Q4 = '''\
def hit_ratio_of(client, urls):
    """The share of the requests in `urls` that the app answered from its cache."""
    return ____


ex.q4.check(hit_ratio_of)'''

# ---------------------------------------------------------------------- the solutions: the starters, filled in
_SOLUTION_Q1 = STARTER_Q1.replace(
    "@cache.cached(____)",
    "@cache.cached(timeout=300, query_string=True)"
    "  # the key: the path (which product) + the sorted query (which page)",
)
_SOLUTION_Q2 = '''\
def my_orders_key():
    """One entry per signed-in customer and page size (a callable key_prefix is the whole key)."""
    return f"me/orders/{current_customer_id()}/{int_arg('limit', 5, high=50)}"


''' + STARTER_Q2.replace("key_prefix=____", "key_prefix=my_orders_key")
_SOLUTION_Q3 = STARTER_Q3.replace(
    "    ____  # the next GET of this customer's contact page must show the new email",
    "    # Drop this customer's entry only: the key the GET view stored, rebuilt from its own path.\n"
    '    cache.delete_cached(customer_contact, path=url_for(".customer_contact", customer_id=customer_id))',
)


def hit_ratio(client: FlaskClient, urls: Sequence[str]) -> float:
    """Reference for q4: the share of requests answered from the cache, i.e. that ran no SQL statement."""
    hits = sum(client.get(url).headers["X-Statements"] == "0" for url in urls)
    return hits / len(urls)


# ---------------------------------------------------------------------- the truth the answers are compared with
def _reviews_page(product_id: int) -> dict[str, Any]:
    """q1's page, uncached: five reviews of a product, page `?page=`."""
    page = int_arg("page", 1)
    query = select(Review.id, Review.rating).where(Review.product_id == product_id).order_by(Review.id)
    reviews = get_session().execute(query.limit(5).offset((page - 1) * 5))
    return {"product": product_id, "page": page, "reviews": [review._asdict() for review in reviews]}


def _newest_orders() -> dict[str, Any]:
    """q2's page, uncached: the signed-in customer's newest orders, `?limit=` of them."""
    customer_id, limit = current_customer_id(), int_arg("limit", 5, high=50)
    query = select(Order.id, Order.status, Order.total).where(Order.customer_id == customer_id)
    orders = get_session().execute(query.order_by(Order.id.desc()).limit(limit))
    return {"customer": customer_id, "orders": [order._asdict() for order in orders]}


_q4_views = Blueprint("q4_views", __name__)


@_q4_views.get("/customers/<int:customer_id>/name")
@cache.cached(timeout=300)
def _customer_name(customer_id: int) -> dict[str, Any]:
    """The page q4's traffic visits: one primary-key lookup, cached per path."""
    name = get_session().scalar(select(Customer.name).where(Customer.id == customer_id))
    return {"id": customer_id, "name": name}


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


def _truth(view: Any, rule: str) -> Blueprint:
    """An uncached view at `rule`: what every answer should be."""
    truth = Blueprint(f"truth_{secrets.token_hex(4)}", __name__)
    truth.add_url_rule(rule, view_func=view)
    return truth


def _require_route(app: Flask, path: str, method: str = "GET") -> None:
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


def _keys_after(course: Course, views: Any, truth: Blueprint, gets: Sequence[_Get], keep_apart: str) -> list[str]:
    """Replay `gets` (the last repeats the first) on the learner's views and the truth; the keys stored after.

    Answers must agree with the truth's, and the repeated request must have run no statement.
    """
    with temporary_app(course, views, TESTING=True) as app, temporary_app(course, truth) as truth_app:
        _require_route(app, gets[0].path)
        statements = _replay(app, truth_app, gets, keep_apart)
        if statements[-1]:
            raise Incorrect(
                f"the repeated {gets[-1]} ran {statements[-1]} statement{'s' if statements[-1] > 1 else ''}: "
                "it was not answered from the cache"
            )
        return stored_keys(app)


def _keys_text(keys: Sequence[str]) -> str:
    return ", ".join(repr(k if len(k) <= 40 else k[:37] + "...") for k in keys)


# ---------------------------------------------------------------------- rows the checks use
@dataclass(frozen=True)
class _Rows:
    """The most reviewed products, the busiest customers and the first two customers (on any size)."""

    products: list[int]
    customers: list[int]
    contacts: list[int]


def _busiest(session: Any, column: Any) -> list[int]:
    """The two values of `column` with the most rows (ties broken by the value)."""
    return list(session.scalars(select(column).group_by(column).order_by(func.count().desc(), column).limit(2)))


@functools.lru_cache(maxsize=16)
def _rows_at(url: str) -> _Rows:
    engine = make_engine(url)
    try:
        with engine.connect() as session:
            products, customers = _busiest(session, Review.product_id), _busiest(session, Order.customer_id)
            contacts = list(session.scalars(select(Customer.id).order_by(Customer.id).limit(2)))
    finally:
        engine.dispose()
    return _Rows(products, customers, contacts)


def _rows(course: Course) -> _Rows:
    return _rows_at(course.url.render_as_string(hide_password=False))


# ---------------------------------------------------------------------- q1 and q2: keys
def _check_q1(course: Course, views: Any) -> str:
    p1, p2 = _rows(course).products
    pages = [(p1, 1), (p1, 2), (p2, 1), (p1, 1)]
    gets = [_Get(f"/products/{product}/reviews?page={page}") for product, page in pages]
    truth = _truth(_reviews_page, "/products/<int:product_id>/reviews")
    keys = _keys_after(course, views, truth, gets, "the key must hold the product and the page")
    return f"3 different pages, {len(keys)} keys ({_keys_text(keys)}); the repeated request ran no statement."


def _check_q2(course: Course, views: Any) -> str:
    a, b = _rows(course).customers
    gets = [_Get(f"/me/orders?limit={limit}", customer) for customer, limit in ((a, 5), (b, 5), (a, 10), (a, 5))]
    truth = _truth(_newest_orders, "/me/orders")
    keys = _keys_after(course, views, truth, gets, "the key must hold who is signed in and the page size")
    return f"each customer and page size has its own entry ({_keys_text(keys)})."


Q1 = Question(
    title="A key per product and page",
    starter=STARTER_Q1,
    check=_check_q1,
    hints=(
        "The page number is in the query string, which cached() leaves out of its key by default: "
        "cache.cached(timeout=300, query_string=True) keys on the path and the sorted query string.",
    ),
    solution=_SOLUTION_Q1,
)

Q2 = Question(
    title="A key per signed-in customer",
    starter=STARTER_Q2,
    check=_check_q2,
    hints=(
        "The path /me/orders is the same for everyone. Give key_prefix a function (no arguments) returning a "
        "string with current_customer_id() and the limit in it: a callable key_prefix is the whole key.",
    ),
    solution=_SOLUTION_Q2,
)


# ---------------------------------------------------------------------- q3: fresh after a write
@contextmanager
def _email_put_back(course: Course, customer_id: int) -> Iterator[None]:
    """The customer's email as it was, whatever the block changed."""
    with course.session() as session:
        old_email = session.scalar(select(Customer.email).where(Customer.id == customer_id))
    try:
        yield
    finally:
        with course.session() as session:
            session.execute(update(Customer).where(Customer.id == customer_id).values(email=old_email))
            session.commit()


def _change_and_look(client: FlaskClient, customer_id: int, other: int) -> None:
    """POST a new email for the customer, then: their contact page shows it, the other's is still a hit."""
    page, new_email = f"/customers/{customer_id}/contact", f"changed-{secrets.token_hex(3)}@example.com"
    posted = client.post(f"/customers/{customer_id}/email", json={"email": new_email})
    if posted.status_code != 200:
        raise Incorrect(f"POST /customers/{customer_id}/email answered {posted.status_code}")
    if (client.get(page).get_json(silent=True) or {}).get("email") != new_email:
        raise Incorrect(
            f"after the POST, GET {page} still showed the old email (the cached entry): delete that entry in the "
            "POST view, with the key the GET view stored"
        )
    if _statements(client.get(f"/customers/{other}/contact")):
        raise Incorrect(
            f"customer {other}'s cached page was dropped too: delete only the entry of the customer who changed "
            "(cache.clear() empties the whole cache)"
        )


def _check_q3(lab: Course, views: Any) -> str:
    c1, c2 = _rows(lab).contacts
    page1, page2 = f"/customers/{c1}/contact", f"/customers/{c2}/contact"
    with temporary_app(lab, views, TESTING=True) as app, _email_put_back(lab, c1):
        _require_route(app, page1)
        _require_route(app, f"/customers/{c1}/email", "POST")
        client = app.test_client()
        client.get(page1)
        client.get(page2)
        if _statements(client.get(page2)):
            raise Incorrect(f"a second GET {page2} ran statements: keep the GET view cached")
        _change_and_look(client, c1, c2)
        keys = stored_keys(app)
    return f"the changed page is fresh and the other stays cached ({_keys_text(keys)})."


Q3 = Question(
    title="Fresh after a write",
    starter=STARTER_Q3,
    check=_check_q3,
    hints=(
        "In the POST view, after the commit: cache.delete_cached(customer_contact, "
        "path=url_for('.customer_contact', customer_id=customer_id)), or cache.delete() of the key the GET "
        "view stored ('view/' + its path).",
    ),
    solution=_SOLUTION_Q3,
)


# ---------------------------------------------------------------------- q4: a hit ratio
def _q4_traffic(course: Course) -> list[str]:
    """_Q4_REQUESTS name pages of customers, drawn as often as each customer orders (seeded)."""
    return traffic(popularity(course)["customers"], "/customers/{}/name", requests=_Q4_REQUESTS)


def _q4_mistake(got: float, expected: float, unlimited: float) -> str:
    """What a wrong hit ratio most likely counted."""
    if abs(got - unlimited) < 1e-9:
        return (
            f"{got:.1%} is what a cache that never evicts would serve (1 − distinct/requests); this one holds "
            f"{_Q4_THRESHOLD} entries: count the responses that ran no statement"
        )
    if got == 1:
        return "every request counted as a hit: a hit is a response that ran no statement"
    return f"your function says {got:.1%} of requests were hits, the responses {expected:.1%}"


def _check_q4(course: Course, answer: Any) -> str:
    if not callable(answer):
        raise Incorrect("pass your function: ex.q4.check(hit_ratio)")
    urls = _q4_traffic(course)
    config = {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": _Q4_THRESHOLD}
    with temporary_app(course, _q4_views, **config) as app:
        expected = hit_ratio(app.test_client(), urls)
    with temporary_app(course, _q4_views, **config) as app:
        got = answer(app.test_client(), urls)
    if isinstance(got, bool) or not isinstance(got, int | float | np.floating) or not 0 <= got <= 1:
        raise Incorrect(f"return the share of hits, between 0 and 1 (hits / requests), not {got!r:.40}")
    unlimited = 1 - len(set(urls)) / len(urls)
    if abs(float(got) - expected) > 1e-9:
        raise Incorrect(_q4_mistake(float(got), expected, unlimited))
    return (
        f"{expected:.1%} of {len(urls)} requests were hits with {_Q4_THRESHOLD} entries; a cache that never "
        f"evicted would have served {unlimited:.1%}."
    )


Q4 = Question(
    title="A hit ratio from the responses",
    starter=STARTER_Q4,
    check=_check_q4,
    hints=(
        "Send each URL once with client.get(url); a response that ran no SQL statement "
        "(response.headers['X-Statements'] == '0') came from the cache. Return hits / len(urls).",
    ),
    solution=hit_ratio,
)


# ---------------------------------------------------------------------- improve the app: the cached report
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


def _fresh_after_clear(lab: Course, app: Flask, path: str) -> None:
    """After a new order and cache.clear(), the learner's report must agree with the baseline's again."""
    baseline = lab.app()
    try:
        with _new_order(lab):
            with app.app_context():
                cache.clear()  # the invalidation a write would do
            expected = baseline.test_client().get(path).get_json()
            if app.test_client().get(path).get_json() != expected:
                raise Incorrect(
                    "after a new order and cache.clear(), your report still showed the old totals: keep it in the "
                    "app's cache (cache.cached), not in a dict or functools.lru_cache of your own"
                )
    finally:
        baseline.extensions["engine"].dispose()
        with app.app_context():
            cache.clear()  # it holds the report with the order that was just removed


def _check_cache(lab: Course, app: Flask) -> str:
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
    if len(stored_keys(app)) <= len(before):
        raise Incorrect("?days=21 added no entry to the cache: each query string needs a key of its own")
    _fresh_after_clear(lab, app, path)
    return (
        f"Your cached report gives the baseline's answers; a repeated request ran no statement (the first "
        f"ran {_statements(first)}), two query strings made two entries, and after cache.clear() a new order "
        "showed."
    )


def improve_task(lab: Course) -> AppTask:
    """Improve the app: the sales report, cached per query string, on the lesson's copy (a check adds an order)."""
    report = "/reports/sales"
    return AppTask(
        lesson="06",
        endpoint="sales_report",
        rule=report,
        calls=[
            Call(f"{report}?days=7"),
            Call(f"{report}?days=30"),
            Call(f"{report}?days=30&status=paid"),
            Call(f"{report}?status=paid&days=30"),
            Call(f"{report}?days=90&min_total=100"),
            Call(f"{report}?days=abc"),
        ],
        timed=Call(f"{report}?days=30"),
        budget=2,
        hint_text=(
            "cache.cached(timeout=60, query_string=True) under the route decorator: the key is then the path plus "
            "a hash of the sorted query string, so ?days=7 and ?days=30 get entries of their own while "
            "?days=30&status=paid and ?status=paid&days=30 share one."
        ),
        course=with_own_caches(lab),
        extra=functools.partial(_check_cache, lab),
    )


# ---------------------------------------------------------------------- the lesson's exercises
@dataclass(frozen=True)
class Lesson06Exercises:
    """Lesson 06's exercises: four questions and the improve-the-app task."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    q4: Exercise
    improve: AppTask


def exercises(course: Course, lab: Course) -> Lesson06Exercises:
    """The lesson's exercises: q1, q2 and q4 read `course`; q3 and the improve-the-app task write to `lab`."""
    return Lesson06Exercises(Q1.bind(course), Q2.bind(course), Q3.bind(lab), Q4.bind(course), improve_task(lab))
