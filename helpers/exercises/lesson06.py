"""Exercises for lesson 06 · Caching: your cached report (raced), a key per signed-in customer, two entries
invalidated by one write, the smallest cache for a hit ratio, and the sales report cached for the app (improve).

Every check builds the learner's blueprint into an app whose cache starts empty (`caching.temporary_app`), asks
it and an uncached truth the same requests, and reads what the cache did from the response headers
(`X-Statements: 0` is a hit) and from the keys it stored.

A question's solution is its starter cell as it should end up; the truth the checks compare answers with is
written here once more, uncached and in a form of its own.
"""

from __future__ import annotations

import functools
import numbers
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update
from werkzeug.exceptions import HTTPException

from ..course import Course
from ..db import make_engine
from ..measure.display import say, show_code
from ..measure.harness import Comparison, first_difference
from ..measure.predictions import Predicted
from ..shop import optimized
from ..shop.caching import cache
from ..shop.db import get_session
from ..shop.models import Order, OrderLine
from ..shop.params import int_arg
from ..topics.caching import (
    YOUR_REPORT,
    current_customer_id,
    hit_ratio,
    own_prefix,
    popularity,
    race_hits,
    stored_keys,
    temporary_app,
    traffic,
)
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, NotAnswered, Question, contains_blank, hint_text

__all__ = [
    "IMPROVE_HINTS",
    "IMPROVE_SOLUTION",
    "IMPROVE_STARTER",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "Lesson06Exercises",
    "ReportTask",
    "exercises",
    "improve_task",
    "q4_target",
    "race_report",
    "smallest_threshold",
]

_HINTS_LINE = "# ex.{q}.hint()  ex.{q}.hint(2)  ex.{q}.solution()"

# ---------------------------------------------------------------------- the starter cells, verbatim
_STARTER_Q1 = f"""\
yours = Blueprint("yours", __name__)


@yours.get("{YOUR_REPORT}")
def your_report():
    \"\"\"compute_report(), cached: a repeated request runs no statement, and each query string (?days=7,
    ?days=30&status=paid) has an entry of its own.\"\"\"
    ____


ex.q1.check(yours)
{_HINTS_LINE.format(q="q1")}"""

_STARTER_Q2 = f"""\
q2_views = Blueprint("q2_views", __name__)


def my_orders_key():
    \"\"\"The cache key of /me/orders: one entry per signed-in customer and page size.\"\"\"
    return ____


@q2_views.get("/me/orders")
def my_orders():
    customer_id = current_customer_id()
    limit = int_arg("limit", 5, high=50)
    rows = get_session().execute(
        select(Order.id, Order.status, Order.total)
        .where(Order.customer_id == customer_id)
        .order_by(Order.id.desc())
        .limit(limit)
    )
    return {{"customer": customer_id, "orders": [row._asdict() for row in rows]}}


ex.q2.check(q2_views)
{_HINTS_LINE.format(q="q2")}"""

_STARTER_Q3 = f"""\
@cache.memoize(timeout=300)
def order_summary(customer_id):
    \"\"\"How many orders a customer has and what they spent: cached per customer.\"\"\"
    statement = select(func.count(Order.id), func.coalesce(func.sum(Order.total), 0))
    orders, spent = get_session().execute(statement.where(Order.customer_id == customer_id)).one()
    return {{"customer": customer_id, "orders": orders, "spent": spent}}


q3_views = Blueprint("q3_views", __name__)


@q3_views.get("/customers/<int:customer_id>/summary")
def customer_summary(customer_id):
    return order_summary(customer_id)


@q3_views.post("/orders/<int:order_id>/customer")
def move_order(order_id):
    \"\"\"Give an order to another customer (JSON {{"customer_id": ...}}): {{"order": order_id, "customer": ...}}.
    Both customers' summaries must show it at once; every other customer's stays cached.\"\"\"
    new_owner = request.get_json()["customer_id"]
    ____
    return {{"order": order_id, "customer": new_owner}}


ex.q3.check(q3_views)
{_HINTS_LINE.format(q="q3")}"""

_STARTER_Q4 = f"""\
product_pages = pages["product pages"]
target = 0.75 * (1 - len(set(product_pages)) / len(product_pages))  # 3/4 of what a never-evicting cache answers
print(f"The target: {{target:.1%}} of the product-page requests answered from the cache.")
smallest_threshold = ____  # a whole number of entries

ex.q4.check(smallest_threshold)
{_HINTS_LINE.format(q="q4")}"""


def _filled(starter: str, blank: str, code: str) -> str:
    """A starter with `blank` replaced by `code` and its hint line dropped: what the cell looks like solved."""
    return starter.replace(blank, code).rsplit("\n# ex.", 1)[0] + "\n"


_SOLUTION_Q1 = _filled(
    _STARTER_Q1,
    f'@yours.get("{YOUR_REPORT}")\ndef',
    f'@yours.get("{YOUR_REPORT}")\n@cache.cached(timeout=300, query_string=True)  # under the route: Flask calls '
    "the cached view\ndef",
).replace("    ____\n", "    return compute_report()\n")
_SOLUTION_Q2 = _filled(
    _STARTER_Q2,
    "    return ____",
    "    return f\"me/orders/{current_customer_id()}/{int_arg('limit', 5, high=50)}\"",
).replace(
    '@q2_views.get("/me/orders")\n',
    '@q2_views.get("/me/orders")\n@cache.cached(timeout=300, key_prefix=my_orders_key)  # called: the whole key\n',
)
_SOLUTION_Q3 = _filled(
    _STARTER_Q3,
    "    ____",
    """    session = get_session()
    old_owner = session.scalar(select(Order.customer_id).where(Order.id == order_id))  # before the change
    session.execute(update(Order).where(Order.id == order_id).values(customer_id=new_owner))
    session.commit()
    cache.delete_memoized(order_summary, old_owner)  # the two entries the move made wrong, and only them
    cache.delete_memoized(order_summary, new_owner)""",
)


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


def _truth(view: Callable[..., Any], rule: str) -> Blueprint:
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


def _served_uncached(app: Flask, path: str) -> bool:
    """Whether the view Flask calls for `path` is a plain function, not one Flask-Caching's cached() wrapped."""
    endpoint, _ = app.url_map.bind("localhost").match(path.split("?")[0])
    return not hasattr(app.view_functions[endpoint], "uncached")


def _keys_after(
    course: Course, views: Any, truth: Blueprint, gets: Sequence[_Get], keep_apart: str, *, not_yet: str = ""
) -> list[str]:
    """Replay `gets` (the last repeats the first) on the learner's views and the truth; the keys stored after.

    Answers must agree with the truth's, the repeated request must have run no statement, and the app's cache
    must hold the entry. `not_yet`: what to say when nothing is cached at all and the view is not wrapped
    (a starter with no cache added yet): NotAnswered rather than Incorrect.
    """
    with temporary_app(course, views, TESTING=True) as app, temporary_app(course, truth) as truth_app:
        _require_route(app, gets[0].path)
        statements = _replay(app, truth_app, gets, keep_apart)
        keys = stored_keys(app)
        if statements[-1]:
            unwrapped = _served_uncached(app, gets[0].path)
            if not_yet and unwrapped and not keys:
                raise NotAnswered(not_yet)
            order = (
                " (the view Flask calls is not cached: put the cache decorator under the route decorator, which "
                "registers the function below it)"
                if unwrapped
                else ""
            )
            raise Incorrect(
                f"the repeated {gets[-1]} ran {statements[-1]} statement{'s' if statements[-1] > 1 else ''}: "
                f"it was not answered from the cache{order}"
            )
        if not keys:
            raise Incorrect("the app's cache holds no entry: cache with the app's cache, not a dict of your own")
        return keys


def _keys_text(keys: Sequence[str]) -> str:
    return ", ".join(repr(k if len(k) <= 40 else k[:37] + "...") for k in keys)


# ---------------------------------------------------------------------- rows the checks use
@dataclass(frozen=True)
class _Rows:
    """The busiest customers (two, for q2), and for q3 an order of the busiest one and two other customers."""

    customers: list[int]
    moved_order: int
    owners: tuple[int, int, int]  # the order's owner, who it moves to, and a customer the move leaves alone


def _busiest(session: Any, column: Any, n: int) -> list[int]:
    """The `n` values of `column` with the most rows (ties broken by the value)."""
    return list(session.scalars(select(column).group_by(column).order_by(func.count().desc(), column).limit(n)))


@functools.lru_cache(maxsize=16)
def _rows_at(url: str) -> _Rows:
    engine = make_engine(url)
    try:
        with engine.connect() as session:
            customers = _busiest(session, Order.customer_id, 3)
            order = session.scalar(select(func.min(Order.id)).where(Order.customer_id == customers[0]))
    finally:
        engine.dispose()
    return _Rows(customers[:2], int(order or 0), (customers[0], customers[1], customers[2]))


def _rows(course: Course) -> _Rows:
    return _rows_at(course.url.render_as_string(hide_password=False))


# ---------------------------------------------------------------------- q1: your cached report
def _report_gets() -> list[_Get]:
    """Two reports, a third with a status, then the first again (that one must be a hit)."""
    return [_Get(f"{YOUR_REPORT}?{q}") for q in ("days=30", "days=7", "days=30&status=paid", "days=30")]


def _check_q1(course: Course, views: Any) -> str:
    if not isinstance(views, Blueprint):
        raise Incorrect(f"pass your Blueprint (the object whose .get(...) decorates your view), not {type(views)}")
    truth = _truth(optimized.sales_report.uncached, YOUR_REPORT)
    keys = _keys_after(course, views, truth, _report_gets(), "each query string needs an entry of its own")
    return f"3 different reports, {len(keys)} entries ({_keys_text(keys)}); the repeated request ran no statement."


Q1 = Question(
    title="Cache the report",
    starter=_STARTER_Q1,
    check=_check_q1,
    hints=(
        "A decorator stores what the view returns under a key and answers the next request with the same key "
        "from the store. By default the key is the path alone, and ?days=7 and ?days=30 share a path.",
        "Look up Flask-Caching's cache.cached(): its timeout and query_string parameters. Decorators apply "
        "bottom-up: the route decorator must register the cached function, so it goes on top.",
    ),
    solution=_SOLUTION_Q1,
)


def race_report(course: Course, yours: Any, prediction: Predicted = None) -> tuple[Comparison, Comparison]:
    """Lesson 06's race: the uncached report, your cached view (once it is written) and the course's, then a hit
    against the bare Flask view; one table and chart (`topics.caching.race_hits`)."""
    problem = None
    if not isinstance(yours, Blueprint):
        problem = f"yours is a {type(yours).__name__}, not your Blueprint"
    elif contains_blank(yours):
        problem = "your view still has ____ in it"
    elif not any(rule == YOUR_REPORT for rule, _ in _rules(yours)):
        problem = f"your blueprint does not serve {YOUR_REPORT} yet"
    return race_hits(course, None if problem else yours, prediction, problem)


def _rules(views: Blueprint) -> list[tuple[str, frozenset[str]]]:
    """(rule, methods) of each route a blueprint serves, read from a scratch app."""
    app = Flask("scratch")
    app.register_blueprint(views)
    return [
        (rule.rule, frozenset((rule.methods or set()) - {"HEAD", "OPTIONS"}))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    ]


# ---------------------------------------------------------------------- q2: a key per signed-in customer
def _newest_orders() -> dict[str, Any]:
    """q2's page, uncached: the signed-in customer's newest orders, `?limit=` of them."""
    customer_id, limit = current_customer_id(), int_arg("limit", 5, high=50)
    query = select(Order.id, Order.status, Order.total).where(Order.customer_id == customer_id)
    orders = get_session().execute(query.order_by(Order.id.desc()).limit(limit))
    return {"customer": customer_id, "orders": [order._asdict() for order in orders]}


def _check_q2(course: Course, views: Any) -> str:
    a, b = _rows(course).customers
    asked = ((a, 5), (b, 5), (a, 10), (b, 10), (a, 5))
    gets = [_Get(f"/me/orders?limit={limit}", customer) for customer, limit in asked]
    keys = _keys_after(
        course,
        views,
        _truth(_newest_orders, "/me/orders"),
        gets,
        "the key must hold who is signed in and the page size",
        not_yet="cache the view with your key: a cache decorator under the route decorator",
    )
    return f"each customer and page size has its own entry ({_keys_text(keys)})."


Q2 = Question(
    title="A key per signed-in customer",
    starter=_STARTER_Q2,
    check=_check_q2,
    hints=(
        "The path /me/orders is the same for everyone, and who is signed in is not in the query string: the key "
        "must be computed on each request from what changes the answer (the customer and the page size).",
        "A callable key_prefix (or make_cache_key) of cache.cached() is called on every request and its result "
        "is the whole key; current_customer_id() and int_arg() read the request.",
    ),
    solution=_SOLUTION_Q2,
)


# ---------------------------------------------------------------------- q3: one write, two entries
def _summary(customer_id: int) -> dict[str, Any]:
    """q3's page, uncached: a customer's number of orders and what they spent."""
    statement = select(func.count(Order.id), func.coalesce(func.sum(Order.total), 0))
    orders, spent = get_session().execute(statement.where(Order.customer_id == customer_id)).one()
    return {"customer": customer_id, "orders": orders, "spent": spent}


@contextmanager
def _owner_put_back(course: Course, order_id: int) -> Iterator[None]:
    """The order's customer as it was, whatever the block changed."""
    with course.session() as session:
        owner = session.scalar(select(Order.customer_id).where(Order.id == order_id))
    try:
        yield
    finally:
        with course.session() as session:
            session.execute(update(Order).where(Order.id == order_id).values(customer_id=owner))
            session.commit()


def _move_and_look(
    client: FlaskClient, truth: FlaskClient, order_id: int, moves: tuple[int, int], other: int
) -> None:
    """Move the order from one customer to the other; both summaries must be fresh, `other`'s still a hit."""
    old, new = moves
    posted = client.post(f"/orders/{order_id}/customer", json={"customer_id": new})
    if posted.status_code != 200:
        raise Incorrect(f"POST /orders/{order_id}/customer answered {posted.status_code}")
    for customer, role in ((new, "who got the order"), (old, "who gave it up")):
        page = f"/customers/{customer}/summary"
        if client.get(page).get_json(silent=True) != truth.get(page).get_json(silent=True):
            raise Incorrect(
                f"after moving order {order_id} from customer {old} to {new}, GET {page} (the customer {role}) "
                "still showed the cached summary: drop that customer's entry too"
            )
    if _statements(client.get(f"/customers/{other}/summary")):
        raise Incorrect(
            f"customer {other}'s summary was dropped too, though the move did not change it: delete the entries "
            "of the two customers, not every entry of the function"
        )


def _check_q3(lab: Course, views: Any) -> str:
    rows = _rows(lab)
    owner, taker, other = rows.owners
    truth = _truth(_summary, "/customers/<int:customer_id>/summary")
    with (
        temporary_app(lab, views, TESTING=True) as app,
        temporary_app(lab, truth) as truth_app,
        _owner_put_back(lab, rows.moved_order),
    ):
        _require_route(app, f"/customers/{owner}/summary")
        _require_route(app, f"/orders/{rows.moved_order}/customer", "POST")
        client = app.test_client()
        for customer in (owner, taker, other) * 2:
            client.get(f"/customers/{customer}/summary")
        if _statements(client.get(f"/customers/{other}/summary")):
            raise Incorrect("a second GET of a summary ran statements: keep order_summary memoized")
        # Two moves: there and back again (two inputs, and the data ends as it began).
        for moves in ((owner, taker), (taker, owner)):
            _move_and_look(client, truth_app.test_client(), rows.moved_order, moves, other)
    return (
        f"order {rows.moved_order} moved from customer {owner} to {taker} and back: both summaries were fresh "
        f"each time, and customer {other}'s stayed cached."
    )


Q3 = Question(
    title="One write, two entries",
    starter=_STARTER_Q3,
    check=_check_q3,
    hints=(
        "Moving an order changes two summaries: the customer who had it and the one who gets it. Read who had it "
        "before you change anything, write and commit, then drop exactly those two entries.",
        "cache.delete_memoized(function, *args) deletes the entry of one argument; without arguments it swaps the "
        "version of every entry. select(Order.customer_id) and update(Order) do the reading and the writing.",
    ),
    solution=_SOLUTION_Q3,
)


# ---------------------------------------------------------------------- q4: the smallest cache for a hit ratio
_Q4_SHARE = 0.75  # of what a cache that never evicts answers
_Q4_SLACK = 0.9  # an answer within 10% of the smallest threshold is right
_product_pages: dict[str, list[str]] = {}  # by database URL: the requests the lesson draws there


def q4_target(course: Course) -> tuple[list[str], float]:
    """The lesson's 5,000 product-page requests (as its hit-ratio cell draws them) and the hit ratio q4 asks for:
    three quarters of what a cache that never evicts would answer."""
    url = course.url.render_as_string(hide_password=False)
    if url not in _product_pages:
        _product_pages[url] = traffic(popularity(course)["products"], "/products/{}", requests=5_000)
    pages = _product_pages[url]
    return pages, _Q4_SHARE * (1 - len(set(pages)) / len(pages))


def smallest_threshold(course: Course) -> int:
    """Reference for q4: the smallest SimpleCache threshold that reaches the target, found by bisection."""
    pages, target = q4_target(course)
    low, high = 1, len(set(pages))
    while low < high:
        middle = (low + high) // 2
        if hit_ratio(pages, middle) >= target:
            high = middle
        else:
            low = middle + 1
    return low


_SOLUTION_Q4 = """\
low, high = 1, len(set(product_pages))  # a cache of every page asked for reaches it
while low < high:  # bisection: halve the range until one threshold is left
    middle = (low + high) // 2
    if hit_ratio(product_pages, middle) >= target:
        high = middle
    else:
        low = middle + 1
smallest_threshold = low
"""


def _check_q4(course: Course, answer: Any) -> str:
    whole = isinstance(answer, numbers.Integral) or (isinstance(answer, float) and answer.is_integer())
    if isinstance(answer, bool) or not whole:
        raise Incorrect(f"answer with a whole number of entries (a threshold), not {answer!r:.40}")
    threshold = int(answer)
    if threshold < 1:
        raise Incorrect("a cache keeps at least one entry: answer a threshold of 1 or more")
    pages, target = q4_target(course)
    reached = hit_ratio(pages, threshold)
    if reached < target:
        raise Incorrect(
            f"a SimpleCache of {threshold} entries answers {reached:.1%} of the product-page requests, less than "
            f"the {target:.1%} asked for: it needs more entries"
        )
    smaller = int(threshold * _Q4_SLACK)
    if smaller >= 1 and (also := hit_ratio(pages, smaller)) >= target:
        raise Incorrect(
            f"{threshold} entries reach it, but so do {smaller} ({also:.1%}): look for the smallest threshold"
        )
    return (
        f"{threshold} entries answer {reached:.1%} of the requests (the target was {target:.1%}; a cache that "
        f"never evicts answers {target / _Q4_SHARE:.1%}) out of {len(set(pages)):,} different pages."
    )


Q4 = Question(
    title="The smallest cache for a hit ratio",
    starter=_STARTER_Q4,
    check=_check_q4,
    hints=(
        "The hit ratio grows with the cache's size, fastest at first: try a size, see on which side of the "
        "target it lands, and narrow the range down (halving it each time takes a dozen tries).",
        "hit_ratio(product_pages, threshold), from the hit-ratio section, replays the requests against a "
        "SimpleCache of that threshold; a while loop that halves a (low, high) range finds the first threshold "
        "that reaches the target.",
    ),
    solution=_SOLUTION_Q4,
)


# ---------------------------------------------------------------------- improve the app: the report, cached
IMPROVE_STARTER = '''\
def report_data():
    """Lesson 03's report: revenue and units per category over the last ?days= days (?status=, ?min_total=)."""
    session = get_session()
    days, conditions = report_window(session)  # reads ?days, ?status and ?min_total (400 if one is invalid)
    if conditions is None:
        return {"days": days, "categories": []}
    revenue = func.sum(OrderLine.quantity * OrderLine.unit_price)
    query = select(Product.category, revenue, func.sum(OrderLine.quantity)).join(OrderLine.order)
    query = query.join(OrderLine.product).where(*conditions).group_by(Product.category)
    rows = [(c, Decimal(r).quantize(Decimal("0.01")), int(u)) for c, r, u in session.execute(query)]
    rows.sort(key=lambda row: (-row[1], row[0]))
    return {"days": days, "categories": [{"category": c, "revenue": r, "units": u} for c, r, u in rows]}


my_views = Blueprint("my_views", __name__)


@my_views.get("/reports/sales")
def sales_report():
    """report_data(), cached: at most 2 statements when it runs and none when the cache answers; one entry per
    (days, status, min_total), so ?days=30&utm_source=mail shares the entry of ?days=30; and every report
    entry is dropped when POST /orders places an order (lesson 08's view, not this blueprint's)."""
    ____


ex.improve.check(my_views)
# ex.improve.hint()  ex.improve.hint(2)  ex.improve.solution()'''

IMPROVE_SOLUTION = (
    IMPROVE_STARTER.split("\n\n\nmy_views = ")[0]
    + '''


REPORT_PARAMETERS = ("days", "status", "min_total")  # what the report reads: nothing else goes into its key


def report_key(*args, **kwargs):
    """The report's key: a generation number, then its own parameters (utm_* and the rest left out)."""
    generation = cache.get("reports/generation") or 0
    return f"reports/{generation}/" + "|".join(request.args.get(name, "") for name in REPORT_PARAMETERS)


my_views = Blueprint("my_views", __name__)


@my_views.get("/reports/sales")
@cache.cached(timeout=600, make_cache_key=report_key)
def sales_report():
    return report_data()


@my_views.after_app_request  # runs after every request of the app, whichever blueprint served it
def forget_reports(response):
    """A placed order changes every report: a new generation makes all the old entries unreachable."""
    if request.method == "POST" and request.path == "/orders" and response.status_code == 201:
        cache.set("reports/generation", (cache.get("reports/generation") or 0) + 1, timeout=0)
    return response
'''
)

IMPROVE_HINTS = (
    "Three things: a key made of the report's own parameters only (so a tracking parameter shares the entry); "
    "a way to make every report entry unreachable at once (delete_memoized does it for a memoized function by "
    "changing a version); and something that runs when POST /orders answers, though another blueprint serves it.",
    "Look up the make_cache_key parameter of cache.cached, or cache.memoize with cache.delete_memoized, and "
    "Flask's Blueprint.after_app_request (a function called after every request of the app, with the response); "
    "request.method, request.path and request.args tell it what happened.",
)
_SALES = "/reports/sales"
_ORDER_BODY = {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 3}, {"product_id": 2, "quantity": 1}]}


class _ReportCourse(Course):
    """The lesson's copy, with apps that have caches of their own and `POST /orders` served (the course's view)
    after the learner's views: the invalidation check places orders through the app."""

    def app(self, *, views: Any = None, **config: Any) -> Flask:
        if views is not None:
            views = [*([views] if isinstance(views, Blueprint) else views), _orders_views()]
        return super().app(views=views, **{"CACHE_KEY_PREFIX": own_prefix(), **config})


@functools.cache
def _orders_views() -> Blueprint:
    """POST /orders alone (the course's view, without the finished app's own invalidation hook): what places
    orders in the check's app, so that only the learner's code can drop a cached report."""
    orders = Blueprint("orders_for_the_check", __name__)
    orders.add_url_rule("/orders", view_func=optimized.place_order, methods=["POST"])
    return orders


def _own_routes_only(app: Flask) -> None:
    """The report's blueprint serves the report: POST /orders is lesson 08's, and the capstone keeps both."""
    extra = [
        f"{' '.join(sorted((rule.methods or set()) - {'HEAD', 'OPTIONS'}))} {rule.rule}"
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in ("static", "index")
        and not rule.endpoint.startswith(f"{_orders_views().name}.")
        and rule.rule != _SALES
    ]
    if extra:
        raise Incorrect(
            f"your blueprint also serves {', '.join(extra)}: serve GET {_SALES} only (POST /orders is "
            "lesson 08's view, and the capstone keeps both): invalidate from a function that runs after every "
            "request of the app"
        )


def _place_order(client: FlaskClient) -> int:
    placed = client.post("/orders", json=_ORDER_BODY)
    if placed.status_code != 201:
        raise Incorrect(f"POST /orders answered {placed.status_code}: {placed.get_json(silent=True)}")
    return int(placed.get_json()["id"])


def _fresh_after_orders(lab: Course, app: Flask, paths: Sequence[str]) -> None:
    """Two orders placed through the app: after each, every cached report agrees with the baseline's again, and
    an entry that is not a report is still there."""
    baseline = lab.app()
    client, truth = app.test_client(), baseline.test_client()
    placed: list[int] = []
    try:
        with app.app_context():
            cache.set("another/page", "kept", timeout=600)
        for write in ("first", "second"):
            before = {path: client.get(path).get_json() for path in paths}  # cached now
            placed.append(_place_order(client))
            for path in paths:
                now, expected = client.get(path).get_json(), truth.get(path).get_json()
                if now != expected:
                    also = " (the first was; a second was not: drop the entries after every order)" * (
                        write == "second"
                    )
                    raise Incorrect(
                        f"after the {write} POST /orders, GET {path} still showed the report from before{also}: "
                        "drop every cached report when an order is placed"
                    )
                if now == before[path]:
                    raise Incorrect(f"the check's order did not change GET {path}: tell the course's maintainers")
            with app.app_context():
                if cache.get("another/page") != "kept":
                    raise Incorrect(
                        "the POST also emptied the rest of the cache (an entry that is not a report went): drop "
                        "the report entries only, not cache.clear()"
                    )
    finally:
        baseline.extensions["engine"].dispose()
        _remove_orders(lab, placed)


def _remove_orders(lab: Course, order_ids: Sequence[int]) -> None:
    with lab.session() as session:
        session.execute(delete(OrderLine).where(OrderLine.order_id.in_(order_ids)))
        session.execute(delete(Order).where(Order.id.in_(order_ids)))
        session.commit()


def _check_report(lab: Course, app: Flask) -> str:
    """The report's cache: hits, its own parameters only, fresh after every order, nothing else dropped."""
    client = app.test_client()
    path = f"{_SALES}?days=29"  # a report the answers' check has not asked for: the first GET is a miss
    miss, hit = client.get(path), client.get(path)
    if _statements(hit):
        raise Incorrect(
            f"a second GET {path} ran {_statements(hit)} statements: it was not answered from the cache"
        )
    if not stored_keys(app):
        raise Incorrect("the app's cache holds no entry: cache with the app's cache, not a dict of your own")
    for noisy in (f"{path}&utm_source=newsletter&utm_campaign=december", f"{_SALES}?utm_medium=mail&days=30"):
        if ran := _statements(client.get(noisy)):
            raise Incorrect(
                f"GET {noisy} ran {ran} statements: a parameter the report does not read made a new entry "
                "(key the report on days, status and min_total only)"
            )
    _own_routes_only(app)
    _fresh_after_orders(lab, app, [path, f"{_SALES}?days=7&min_total=10"])
    with app.app_context():
        cache.clear()  # this app's own prefix: the entries it keeps hold orders that are gone again
    return (
        f"Your report gives the baseline's answers with at most {_statements(miss)} statements, none on a hit; "
        "utm_* parameters share the entry, and after each of two orders placed through POST /orders the "
        "reports were fresh while the rest of the cache stayed."
    )


@dataclass
class ReportTask(AppTask):
    """Improve the app: the sales report, cached on its own parameters and dropped when an order is placed."""

    hints: tuple[str, ...] = IMPROVE_HINTS

    def hint(self, level: int = 1) -> None:
        """The task's hints in order: 1 names the idea, 2 the API to look up."""
        say(hint_text(self.hints, level), "#3a6fb0")

    def solution(self) -> None:
        """The course's answer: the report cached on its own parameters, dropped after every order."""
        show_code(IMPROVE_SOLUTION)


def improve_task(lab: Course) -> ReportTask:
    """The improve-the-app task, on the lesson's copy (the check places orders and removes them)."""
    report = _SALES
    course = _ReportCourse(lab.lesson, lab.settings, lab.url, lab.engine, lab.info)
    return ReportTask(
        lesson="06",
        endpoint="sales_report",
        rule=report,
        calls=[
            Call(f"{report}?days=7"),
            Call(f"{report}?days=30"),
            Call(f"{report}?days=30&status=paid"),
            Call(f"{report}?status=paid&days=30"),
            Call(f"{report}?days=90&min_total=100"),
            Call(f"{report}?days=30&utm_source=newsletter"),
            Call(f"{report}?days=abc"),
        ],
        timed=Call(f"{report}?days=30"),
        budget=2,
        hint_text=IMPROVE_HINTS[0],
        course=course,
        baseline_course=lab,
        extra=functools.partial(_check_report, lab),
    )


# ---------------------------------------------------------------------- the lesson's exercises
@dataclass(frozen=True)
class Lesson06Exercises:
    """Lesson 06's exercises: your cached report (q1), three more questions and the improve-the-app task."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    q4: Exercise
    improve: ReportTask


def exercises(course: Course, lab: Course) -> Lesson06Exercises:
    """The lesson's exercises: q1, q2 and q4 read `course`; q3 and the improve-the-app task write to `lab`."""
    return Lesson06Exercises(Q1.bind(course), Q2.bind(course), Q3.bind(lab), Q4.bind(course), improve_task(lab))
