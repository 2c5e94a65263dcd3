"""Lesson 06 · Caching: the blog's key and its three fixes, query strings, per-customer keys, invalidation, expiry,
per-process and shared caches, and the exercises, pinned by keys and bodies on both backends and both stores."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask, request
from flask_caching import Cache
from sqlalchemy import func, select, update
from sqlalchemy.orm.exc import DetachedInstanceError

from helpers.course import Course
from helpers.errors import CourseError
from helpers.exercises.core import contains_blank
from helpers.exercises.lesson06 import Q1, Q2, Q3, Q4, exercises, hit_ratio
from helpers.measure.display import show_source
from helpers.servers import redis_url
from helpers.serving import build_app
from helpers.shop import baseline, optimized
from helpers.shop.caching import cache
from helpers.shop.db import get_session
from helpers.shop.models import Customer, Order
from helpers.shop.params import str_arg
from helpers.topics.caching import (
    close_apps,
    current_customer_id,
    fresh_app,
    own_prefix,
    popularity,
    rename_through_a,
    stored_keys,
    temporary_app,
    traffic,
    visit,
)
from tests.cells import notebook_code_cells, private_copy, run_cell

STORES = ["simple", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=STORES)
def shop(course: Course, request: pytest.FixtureRequest) -> Iterator[Course]:
    """The tiny dataset (SQLite or PostgreSQL) with apps caching in a SimpleCache or in the course's Redis."""
    yield dataclasses.replace(course, settings=dataclasses.replace(course.settings, cache=request.param))
    close_apps()


@pytest.fixture
def lab(shop: Course) -> Iterator[Course]:
    with private_copy(shop, "test05") as copy:
        yield copy


def user_row(user_id: int) -> dict[str, Any]:
    statement = select(Customer.id, Customer.name, Customer.email).where(Customer.id == user_id)
    return get_session().execute(statement).one()._asdict()


def users(name: str, decorate: Callable[[Any], Any]) -> Blueprint:
    """/users/<id> serving user_row, wrapped by `decorate`."""

    def get_user(user_id: int) -> dict[str, Any]:
        return user_row(user_id)

    views = Blueprint(name, __name__)
    views.add_url_rule("/users/<int:user_id>", view_func=decorate(get_user))
    return views


@cache.memoize(timeout=300)
def cached_user_row(user_id: int) -> dict[str, Any]:
    return user_row(user_id)


def memoized_user(user_id: int) -> dict[str, Any]:
    return cached_user_row(user_id)


def test_blog_key_prefix_is_the_whole_key_and_serves_user_1_to_user_2(shop: Course) -> None:
    app = fresh_app(shop, users("blog", cache.cached(timeout=300, key_prefix="user")))
    table = visit(app, ["/users/1", "/users/2"], fields=["id", "email"])
    assert stored_keys(app) == ["user"]
    assert table["id"].tolist() == [1, 1]  # user 2 got user 1's page
    assert table["statements"].tolist() == [1, 0]
    with shop.session() as session:
        assert table["email"].iloc[1] == session.scalar(select(Customer.email).where(Customer.id == 1))


@pytest.mark.parametrize(
    ("views", "keys"),
    [
        (users("fix_default", cache.cached(timeout=300)), ["view//users/1", "view//users/2"]),
        (users("fix_prefix", cache.cached(timeout=300, key_prefix="user/%s")), ["user//users/1", "user//users/2"]),
        (users("fix_memoize", lambda view: memoized_user), None),
    ],
    ids=["default-key", "user-prefix", "memoize"],
)
def test_each_fix_gives_each_user_their_own_entry(shop: Course, views: Blueprint, keys: list[str] | None) -> None:
    app = fresh_app(shop, views)
    table = visit(app, ["/users/1", "/users/2", "/users/1"], fields=["id"])
    assert table["id"].tolist() == [1, 2, 1]
    assert table["statements"].tolist() == [1, 1, 0]
    stored = stored_keys(app)
    if keys is not None:
        assert stored == keys
    else:  # two entries (a hash of the function and its argument, plus the version) and the version key
        assert len(stored) == 3 and sum(key.endswith("cached_user_row_memver") for key in stored) == 1
        entries = [key for key in stored if not key.endswith("_memver")]
        assert len({key[-6:] for key in entries}) == 1  # both entries end with the same version


def city_count() -> dict[str, Any]:
    city = str_arg("city")
    return {"city": city, "customers": get_session().scalar(select(func.count()).where(Customer.city == city))}


def counted(name: str, decorate: Callable[[Any], Any]) -> Blueprint:
    views = Blueprint(name, __name__)
    views.add_url_rule("/customers/count", view_func=decorate(city_count))
    return views


CITY_REQUESTS = [
    "/customers/count?city=Lisbon",
    "/customers/count?city=Porto",
    "/customers/count?city=Porto&utm_source=mail",
    "/customers/count?utm_source=mail&city=Porto",
]


def test_query_string_is_ignored_by_default(shop: Course) -> None:
    app = fresh_app(shop, counted("by_path", cache.cached(timeout=300)))
    table = visit(app, CITY_REQUESTS, fields=["city"])
    assert table["city"].tolist() == ["Lisbon"] * 4 and table["statements"].tolist() == [1, 0, 0, 0]
    assert stored_keys(app) == ["view//customers/count"]


def test_query_string_true_keys_on_the_sorted_query(shop: Course) -> None:
    app = fresh_app(shop, counted("by_query", cache.cached(timeout=300, query_string=True)))
    table = visit(app, CITY_REQUESTS, fields=["city"])
    assert table["city"].tolist() == ["Lisbon", "Porto", "Porto", "Porto"]
    assert table["statements"].tolist() == [1, 1, 1, 0]  # the reordered query shares an entry
    keys = stored_keys(app)
    assert len(keys) == 3 and all(key.startswith("view//customers/count") for key in keys)


def test_make_cache_key_keeps_only_what_matters(shop: Course) -> None:
    def city_key() -> str:
        return f"customers-in/{str_arg('city')}"

    app = fresh_app(shop, counted("by_city", cache.cached(timeout=300, make_cache_key=city_key)))
    table = visit(app, CITY_REQUESTS, fields=["city"])
    assert table["city"].tolist() == ["Lisbon", "Porto", "Porto", "Porto"]
    assert table["statements"].tolist() == [1, 1, 0, 0]
    assert stored_keys(app) == ["customers-in/Lisbon", "customers-in/Porto"]


def my_account() -> dict[str, Any]:
    customer_id = current_customer_id()
    return {
        "customer": customer_id,
        "name": get_session().scalar(select(Customer.name).where(Customer.id == customer_id)),
    }


@pytest.mark.parametrize(
    ("decorate", "customers", "keys"),
    [
        (cache.cached(timeout=300), [1, 1, 1], ["view//account"]),
        (
            cache.cached(timeout=300, key_prefix=lambda: f"account/{current_customer_id()}"),
            [1, 2, 1],
            ["account/1", "account/2"],
        ),
    ],
    ids=["path-key-leaks", "callable-key-prefix"],
)
def test_a_page_that_depends_on_who_asks(
    shop: Course, decorate: Callable[[Any], Any], customers: list[int], keys: list[str]
) -> None:
    views = Blueprint(f"account_{len(keys)}", __name__)
    views.add_url_rule("/account", view_func=decorate(my_account))
    app = fresh_app(shop, views)
    signed_in = [("/account", {"X-Customer-Id": str(c)}) for c in (1, 2, 1)]
    assert visit(app, signed_in, fields=["customer"])["customer"].tolist() == customers
    assert stored_keys(app) == keys


def test_a_request_without_a_login_is_refused(shop: Course) -> None:
    views = Blueprint("account_plain", __name__)
    views.add_url_rule("/account", view_func=my_account)
    assert fresh_app(shop, views).test_client().get("/account").status_code == 401


def name_of(lab: Course, customer_id: int) -> str:
    with lab.session() as session:
        return str(session.scalar(select(Customer.name).where(Customer.id == customer_id)))


def test_stale_after_a_write_then_delete_and_delete_cached_make_it_fresh(lab: Course) -> None:
    from helpers.topics.caching import profile_views

    app = fresh_app(lab, profile_views)
    client = app.test_client()
    page = "/customers/7/profile"
    original = client.get(page).get_json()["name"]
    with lab.engine.begin() as conn:
        conn.execute(update(Customer).where(Customer.id == 7).values(name="Written Elsewhere"))
    stale = client.get(page)
    assert stale.get_json()["name"] == original and stale.headers["X-Statements"] == "0"
    assert stored_keys(app) == ["view//customers/7/profile"]
    with app.app_context():
        assert cache.delete(f"view/{page}")
    assert client.get(page).get_json()["name"] == "Written Elsewhere"
    renamed = client.post("/customers/7/name", json={"name": "Through The App"})
    assert renamed.status_code == 200
    fresh = client.get(page)
    assert fresh.get_json()["name"] == "Through The App" == name_of(lab, 7)
    assert fresh.headers["X-Statements"] == "1"  # the rename deleted the entry: a miss
    assert client.post("/customers/7/name", json={"name": ""}).status_code == 400
    assert client.post("/customers/99999999/name", json={"name": "Nobody"}).status_code == 404


@cache.memoize(timeout=300)
def card(customer_id: int) -> dict[str, Any]:
    return {
        "id": customer_id,
        "name": get_session().scalar(select(Customer.name).where(Customer.id == customer_id)),
    }


def test_delete_memoized_drops_one_entry_or_swaps_the_version(lab: Course) -> None:
    views = Blueprint("cards", __name__)
    views.add_url_rule("/cards/<int:customer_id>", view_func=card)
    app = fresh_app(lab, views)
    client = app.test_client()
    for customer_id in (7, 8, 9):
        client.get(f"/cards/{customer_id}")
    assert len(stored_keys(app)) == 4  # three entries and the version
    with app.app_context():
        cache.delete_memoized(card, 8)
    assert len(stored_keys(app)) == 3
    assert [client.get(f"/cards/{c}").headers["X-Statements"] for c in (7, 8)] == ["0", "1"]
    with app.app_context():
        cache.delete_memoized(card)
    assert len(stored_keys(app)) == 4  # nothing deleted: the old entries wait for their timeout
    assert [client.get(f"/cards/{c}").headers["X-Statements"] for c in (7, 8, 9)] == ["1", "1", "1"]
    assert len(stored_keys(app)) == 7


def test_a_timeout_expires_the_entry(lab: Course) -> None:
    views = Blueprint("short", __name__)

    @views.get("/customers/<int:customer_id>/greeting")
    @cache.cached(timeout=1)
    def greeting(customer_id: int) -> dict[str, Any]:
        return {"greeting": f"Hello, {name_of_in_request(customer_id)}!"}

    client = fresh_app(lab, views).test_client()
    first = client.get("/customers/7/greeting").get_json()
    stored_at = time.monotonic()
    with lab.engine.begin() as conn:
        conn.execute(update(Customer).where(Customer.id == 7).values(name="Expired"))
    while client.get("/customers/7/greeting").get_json() == first:
        assert time.monotonic() - stored_at < 2.5
        time.sleep(0.05)
    assert client.get("/customers/7/greeting").get_json() == {"greeting": "Hello, Expired!"}


def name_of_in_request(customer_id: int) -> str:
    return str(get_session().scalar(select(Customer.name).where(Customer.id == customer_id)))


def test_no_cache_type_means_nullcache_with_a_warning() -> None:
    app = Flask("forgetful")
    with pytest.warns(UserWarning, match="NullCache, caching is effectively disabled"):
        forgetful = Cache(app)
    calls: list[int] = []

    @app.get("/users/<int:user_id>")
    @forgetful.cached(timeout=300)
    def user_page(user_id: int) -> dict[str, int]:
        calls.append(user_id)
        return {"id": user_id}

    for _ in range(3):
        assert app.test_client().get("/users/1").get_json() == {"id": 1}
    assert calls == [1, 1, 1] and stored_keys(app, forgetful) == []


def test_lowercase_cache_type_names_are_gone() -> None:
    with pytest.raises(ImportError, match=r"flask_caching\.backends\.simple"):
        Cache(Flask("old"), config={"CACHE_TYPE": "simple"})


def test_a_cached_orm_object_comes_back_detached(shop: Course) -> None:
    @cache.memoize(timeout=300)
    def load_customer(customer_id: int) -> Customer | None:
        return get_session().get(Customer, customer_id)

    views = Blueprint("orm", __name__)

    @views.get("/customers/<int:customer_id>/order-count")
    def order_count(customer_id: int) -> dict[str, Any]:
        customer = load_customer(customer_id)
        assert customer is not None
        return {"name": customer.name, "orders": len(customer.orders)}

    client = fresh_app(shop, views, TESTING=True).test_client()
    assert client.get("/customers/3/order-count").status_code == 200
    with pytest.raises(DetachedInstanceError) as caught:
        client.get("/customers/3/order-count")
    assert caught.value.code == "bhk3"


def test_simplecache_keeps_threshold_plus_one_and_drops_the_oldest() -> None:
    app = Flask("limit")
    limited = Cache(app, config={"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 5})
    with app.app_context():
        for n in range(1, 9):
            limited.set(f"page/{n}", n)
        assert limited.get("page/1") is None
    assert stored_keys(app, limited) == [f"page/{n}" for n in range(3, 9)]


def test_stored_keys_leaves_out_expired_entries_and_the_redis_prefix(shop: Course) -> None:
    views = Blueprint("nothing", __name__)
    app = fresh_app(shop, views)
    with app.app_context():
        cache.set("lasting", 1, timeout=60)
        cache.set("brief", 1, timeout=1)
    assert stored_keys(app) == ["brief", "lasting"]
    time.sleep(1.1)
    assert stored_keys(app) == ["lasting"]


def test_fresh_apps_do_not_share_a_redis_store(shop: Course) -> None:
    views = Blueprint("shared_or_not", __name__)
    first, second = fresh_app(shop, views), fresh_app(shop, views)
    with first.app_context():
        cache.set("mine", 1)
    assert stored_keys(first) == ["mine"] and stored_keys(second) == []
    close_apps()
    if shop.settings.cache == "redis":
        import redis

        assert not redis.Redis.from_url(redis_url()).keys(f"{own_prefix()[:8]}*mine")


def test_temporary_app_closes_its_engine(shop: Course) -> None:
    with temporary_app(shop, Blueprint("brief_app", __name__)) as app:
        engine = app.extensions["engine"]
        with engine.connect():
            pass
        assert engine.pool.checkedin() == 1
    assert engine.pool.checkedin() == 0


# ---------------------------------------------------------------------- real server processes
def test_two_simplecache_processes_disagree_after_a_write(course: Course) -> None:
    with private_copy(course, "test05-simple") as lab:
        old = name_of(lab, 12)
        table = rename_through_a(lab, {"COURSE_CACHE": "simple"}, 12, "New Name")
    before, after = table.xs("before"), table.xs("after renaming through A")
    assert before["name"].tolist() == [old, old] and (after["in the database"] == "New Name").all()
    assert after.loc["A", "name"] == "New Name" and after.loc["B", "name"] == old
    assert after.loc["B", "statements"] == 0 and after.loc["A", "pid"] != after.loc["B", "pid"]


@pytest.mark.redis
def test_two_processes_on_redis_share_the_invalidation(course: Course) -> None:
    import redis

    url = redis_url()
    redis.Redis.from_url(url).delete("flask_cache_view//customers/12/profile")
    try:
        with private_copy(course, "test05-redis") as lab:
            table = rename_through_a(lab, {"COURSE_CACHE": "redis", "CACHE_REDIS_URL": url}, 12, "Shared")
        after = table.xs("after renaming through A")
        assert after["name"].tolist() == ["Shared", "Shared"]
        assert table.xs("before").loc["B", "statements"] == 0  # A's miss filled the entry B read
    finally:
        redis.Redis.from_url(url).delete("flask_cache_view//customers/12/profile")


def test_a_server_refusing_the_rename_is_an_error(course: Course) -> None:
    with private_copy(course, "test05-refused") as lab, pytest.raises(CourseError, match="answered 400"):
        rename_through_a(lab, {"COURSE_CACHE": "simple"}, 12, "")


def test_serve_imports_views_by_name_and_says_when_it_cannot() -> None:
    with pytest.raises(CourseError, match=r"Cannot import views 'helpers\.nowhere:bp'"):
        build_app("helpers.nowhere:bp", database_url="sqlite://")
    with pytest.raises(CourseError, match="not a Flask Blueprint"):
        build_app("helpers.topics.caching:current_customer_id", database_url="sqlite://")
    with pytest.raises(CourseError, match="module:blueprint"):
        build_app("nonsense")


# ---------------------------------------------------------------------- exercises
def say_what(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.strip()


def filled(starter: str, blank: str, name: str) -> Blueprint:
    """The starter cell with `____` replaced by `blank`, run as a cell: its Blueprint."""
    namespace = run_cell(starter.replace("____", blank), name, current_customer_id=current_customer_id)
    return next(value for value in namespace.values() if isinstance(value, Blueprint))


def solution(source: str, name: str) -> Any:
    """What a solution cell defines: its Blueprint, or for q4 its function."""
    namespace = run_cell(source, name, current_customer_id=current_customer_id)
    return namespace.get("q1_views") or namespace.get("q2_views") or namespace["q3_views"]


def test_the_starters_are_the_notebooks_cells() -> None:
    cells = notebook_code_cells("06_caching.ipynb")
    for question in (Q1, Q2, Q3, Q4):
        assert question.starter in cells, question.title


def test_q1_to_q4_pass_their_solutions(shop: Course, lab: Course, capsys: pytest.CaptureFixture[str]) -> None:
    ex = exercises(shop, lab)
    assert ex.q1.check(solution(str(Q1.solution), "q1_solution"))
    assert ex.q2.check(solution(str(Q2.solution), "q2_solution"))
    assert ex.q3.check(solution(str(Q3.solution), "q3_solution"))
    assert ex.q4.check(hit_ratio)
    out = say_what(capsys)
    assert out.count("Correct!") == 4 and "3 keys" in out


def test_q1_q2_q4_accept_other_right_answers(shop: Course) -> None:
    ex = exercises(shop, shop)
    assert ex.q1.check(filled(Q1.starter, "timeout=60, key_prefix=lambda: request.full_path", "q1_other"))
    per_customer = "lambda: f\"{current_customer_id()}:{request.args.get('limit')}\""
    assert ex.q2.check(filled(Q2.starter, per_customer, "q2_other"))

    def statement_free_share(client: Any, urls: list[str]) -> float:
        return sum(not int(client.get(url).headers["X-Statements"]) for url in urls) / len(urls)

    assert ex.q4.check(statement_free_share)


def uncached(starter: str) -> str:
    """The starter without its @cache.cached(...) line: a view that is not cached at all."""
    return "\n".join(line for line in starter.splitlines() if not line.startswith("@cache.cached("))


@pytest.mark.parametrize(
    ("blank", "reason"),
    [
        ('timeout=300, key_prefix="reviews"', "got the answer cached for GET /products/"),
        ("timeout=300", "page=2 got the answer cached for GET"),
        ('timeout=300, key_prefix="product/%s"', "page=2 got the answer cached for GET"),
        (None, "it was not answered from the cache"),
    ],
    ids=["blog-key", "path-only", "path-prefix", "not-cached"],
)
def test_q1_rejects_keys_without_product_and_page(
    shop: Course, blank: str | None, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = filled(Q1.starter, blank, "q1_wrong") if blank else filled(uncached(Q1.starter), "", "q1_wrong")
    assert not Q1.bind(shop).check(answer)
    assert reason in say_what(capsys)


@pytest.mark.parametrize(
    ("blank", "reason"),
    [
        ('"view/%s"', "as customer"),
        ('lambda: f"me/{current_customer_id()}"', "limit=10 as customer"),
        (None, "it was not answered from the cache"),
    ],
    ids=["path-key", "customer-only", "not-cached"],
)
def test_q2_rejects_keys_without_customer_and_limit(
    shop: Course, blank: str | None, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = filled(Q2.starter, blank, "q2_wrong") if blank else filled(uncached(Q2.starter), "", "q2_wrong")
    assert not Q2.bind(shop).check(answer)
    out = say_what(capsys)
    assert reason in out and ("got the answer cached for" in out or "not answered" in out)


@pytest.mark.parametrize(
    ("blank", "reason"),
    [
        ("pass", "still showed the old email"),
        ("cache.clear()", "cache.clear() empties the whole cache"),
        ('cache.delete(f"/customers/{customer_id}/contact")', "still showed the old email"),
        ("cache.delete_memoized(customer_contact)", "still showed the old email"),
        ("cache.delete_cached(customer_contact)", "your answer raised BuildError"),
    ],
    ids=["no-invalidation", "clear-everything", "wrong-key", "delete-memoized", "delete-cached-without-path"],
)
def test_q3_rejects_stale_or_overbroad_invalidation(
    lab: Course, blank: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with lab.session() as session:
        before = session.scalar(select(Customer.email).where(Customer.id == 1))
    assert not Q3.bind(lab).check(filled(Q3.starter, blank, "q3_wrong"))
    assert reason in say_what(capsys)
    with lab.session() as session:  # the check put the email back
        assert session.scalar(select(Customer.email).where(Customer.id == 1)) == before


def test_q3_accepts_deleting_the_key_by_hand(lab: Course) -> None:
    by_hand = 'cache.delete(f"view//customers/{customer_id}/contact")'
    assert Q3.bind(lab).check(filled(Q3.starter, by_hand, "q3_by_hand"))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda client, urls: 1 - len(set(urls)) / len(urls), "a cache that never evicts"),
        (lambda client, urls: sum(client.get(u).status_code == 200 for u in urls) / len(urls), "every request"),
        (lambda client, urls: sum(client.get(u).headers["X-Statements"] == "0" for u in urls), "between 0 and 1"),
        ("0.5", "pass your function"),
    ],
    ids=["unlimited-cache", "status-200", "count-not-share", "not-a-function"],
)
def test_q4_rejects_hit_ratios_not_read_from_the_responses(
    shop: Course, answer: Any, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not Q4.bind(shop).check(answer)
    assert reason in say_what(capsys)


def test_q4_traffic_is_drawn_from_the_orders(shop: Course) -> None:
    urls = traffic(popularity(shop)["customers"], "/customers/{}/name", requests=300)
    assert len(urls) == 300 and urls == traffic(popularity(shop)["customers"], "/customers/{}/name", requests=300)
    assert len(set(urls)) < 300  # skewed: the busiest customers come back


def test_starters_with_blanks_are_not_answered(shop: Course, capsys: pytest.CaptureFixture[str]) -> None:
    ex = exercises(shop, shop)
    q1 = run_cell(Q1.starter, "q1_blank")["q1_views"]
    q4 = run_cell(Q4.starter, "q4_blank")["hit_ratio_of"]
    assert not ex.q1.check(q1) and not ex.q4.check(q4)
    assert say_what(capsys).count("Not answered yet") == 2


def test_contains_blank_reads_decorators() -> None:
    assert contains_blank(run_cell(Q2.starter, "q2_blank", current_customer_id=current_customer_id)["q2_views"])
    assert not contains_blank(solution(str(Q1.solution), "q1_solution"))


def test_hints_and_solutions_are_shown(shop: Course, capsys: pytest.CaptureFixture[str]) -> None:
    ex = exercises(shop, shop)
    ex.q1.hint()
    assert say_what(capsys).startswith("Hint: The page number is in the query string")
    assert "def my_orders_key():" in str(Q2.solution) and "key_prefix=my_orders_key" in str(Q2.solution)
    assert "cache.delete_cached(customer_contact" in str(Q3.solution) and "____" not in str(Q3.solution)


def test_show_source_names_the_file_a_decorated_view_is_written_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers.measure import display
    from helpers.topics import caching as cachelab

    shown: list[Any] = []
    monkeypatch.setattr(display, "display", shown.append)
    show_source(cachelab.customer_profile)
    assert shown[0].data.startswith("`helpers/topics/caching.py`")
    assert "@cache.cached(timeout=300)" in shown[0].data


# ---------------------------------------------------------------------- improve the app
@pytest.fixture
def kept(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path


def report_views(name: str, view: Callable[[], Any]) -> Blueprint:
    views = Blueprint(name, __name__)
    views.add_url_rule("/reports/sales", view_func=view)
    return views


def test_improve_passes_the_reference_and_saves_it(
    lab: Course, kept: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = exercises(lab, lab)
    assert ex.improve.check(optimized.bp)
    out = capsys.readouterr().out
    assert "a repeated request ran no statement" in out and "a new order showed" in out
    assert (kept / "my_app" / "06_sales_report.py").exists()
    with lab.session() as session:  # the order the check added is gone again
        assert session.scalar(select(func.count()).select_from(Order)) == lab.info.rows["orders"]


def test_improve_rejects_wrong_caches(lab: Course, kept: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ex = exercises(lab, lab)
    compute = optimized.sales_report.uncached
    own: dict[bytes, Any] = {}

    def in_a_dict() -> Any:
        if request.query_string not in own:
            own[request.query_string] = compute()
        return own[request.query_string]

    @functools.lru_cache
    def remembered(query: bytes) -> Any:
        return compute()

    wrong = {
        "not cached": (compute, "it was not answered from the cache"),
        "query string ignored": (cache.cached(timeout=60)(compute), "GET /reports/sales?days=30: your JSON"),
        "the naive view cached": (
            cache.cached(timeout=60, query_string=True)(baseline.sales_report),
            "the budget is 2",
        ),
        "a dict of its own": (in_a_dict, "the app's cache holds no entry"),
        "lru_cache under cached": (
            cache.cached(timeout=60, query_string=True)(lambda: remembered(request.query_string)),
            "still showed the old totals",
        ),
    }
    for i, (name, (view, reason)) in enumerate(wrong.items()):
        assert not ex.improve.check(report_views(f"wrong_report_{i}", view)), name
        assert reason in say_what(capsys), name
    assert not (kept / "my_app" / "06_sales_report.py").exists()
    with lab.session() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == lab.info.rows["orders"]


def test_hit_ratio_chart_draws_a_line_per_column_and_marks_the_pages() -> None:
    import matplotlib.pyplot as plt
    import pandas as pd

    from helpers.measure.plots import hit_ratio_chart

    frame = pd.DataFrame({"a": [0.1, 0.5], "b": [0.2, 0.9]}, index=pd.Index([10, 100], name="threshold"))
    fig = hit_ratio_chart(frame, pages={"a": 50})
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3  # two lines and the dotted mark at 50 pages
    assert ax.get_xscale() == "log" and ax.get_ylim() == (0, 1)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b"]
    plt.close(fig)
