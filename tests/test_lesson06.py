"""Lesson 06 · Caching: the blog's key and its three fixes, query strings, per-customer keys, invalidation, expiry,
per-process and shared caches, and the exercises, pinned by keys and bodies on both backends and both stores."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Blueprint, Flask, request, url_for
from flask_caching import Cache
from sqlalchemy import func, select, update
from sqlalchemy.orm.exc import DetachedInstanceError
from werkzeug.routing import BuildError

from helpers.course import Course
from helpers.errors import CourseError
from helpers.exercises.lesson06 import (
    IMPROVE_HINTS,
    IMPROVE_SOLUTION,
    IMPROVE_STARTER,
    Q1,
    Q2,
    Q3,
    Q4,
    improve_task,
    q4_target,
    race_report,
    smallest_threshold,
)
from helpers.measure import results
from helpers.measure.predictions import Prediction
from helpers.servers import redis_url
from helpers.serving import build_app
from helpers.shop import optimized
from helpers.shop.caching import cache
from helpers.shop.db import get_session
from helpers.shop.models import Customer, Order
from helpers.shop.params import str_arg
from helpers.topics.caching import (
    close_apps,
    current_customer_id,
    fresh_app,
    hit_ratio,
    own_prefix,
    rename_through_a,
    stored_keys,
    temporary_app,
    visit,
)
from tests.cells import notebook_code_cells, private_copy, run_cell
from tests.proving import prove, verdict

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
CELL_NAMES = {
    "compute_report": optimized.sales_report.uncached,
    "current_customer_id": current_customer_id,
    "request": request,
    "url_for": url_for,
}


def cell(source: str, name: str, **names: Any) -> dict[str, Any]:
    """A starter or solution cell run as the notebook runs it (the check at its end left out)."""
    return run_cell(source, name, **CELL_NAMES, **names)


def blueprint(source: str, name: str) -> Blueprint:
    """The Blueprint a cell defines (the last one, when it defines several)."""
    return [value for value in cell(source, name).values() if isinstance(value, Blueprint)][-1]


def test_the_starters_are_the_notebooks_cells() -> None:
    cells = notebook_code_cells("06_caching.ipynb")
    for starter in (Q1.starter, Q2.starter, Q3.starter, Q4.starter, IMPROVE_STARTER):
        assert starter in cells, starter.splitlines()[0]


def test_every_question_has_two_hints_and_no_code_in_them() -> None:
    for hints in (Q1.hints, Q2.hints, Q3.hints, Q4.hints, IMPROVE_HINTS):
        assert len(hints) >= 2
        assert not any("(" in hint and "=" in hint.split("(", 1)[1].split(")")[0] for hint in hints), hints


Q1_CACHED = '@yours.get("/reports/yours")\n@cache.cached(timeout=300, query_string=True)\ndef'
Q1_BODY = ("    ____\n", "    return compute_report()\n")


def q1_answer(decorators: str, name: str) -> Blueprint:
    source = Q1.starter.replace('@yours.get("/reports/yours")\ndef', decorators).replace(*Q1_BODY)
    return blueprint(source, name)


ROUTE = '@yours.get("/reports/yours")\n'
Q1_WRONG = {  # the decorators above `def`, and what the check says about them
    '@yours.get("/reports/yours")\n': "it was not answered from the cache",
    '@yours.get("/reports/yours")\n@cache.cached(timeout=300)\n': "got the answer cached for",
    '@yours.get("/reports/yours")\n@cache.cached(timeout=300, key_prefix="report")\n': "got the answer",
    '@cache.cached(timeout=300, query_string=True)\n@yours.get("/reports/yours")\n': "under the route decorator",
}


def test_q1_is_proven(course: Course) -> None:
    full_path = (
        '@yours.get("/reports/yours")\n@cache.cached(timeout=60, make_cache_key=lambda: request.full_path)\n'
    )
    right = [blueprint(str(Q1.solution), "q1_solution"), q1_answer(full_path + "def", "q1_b")]
    wrong = [
        (q1_answer(lines + "def", f"q1_wrong{i}"), reason) for i, (lines, reason) in enumerate(Q1_WRONG.items())
    ]
    prove(Q1.bind(course).check, right=right, wrong=wrong)


def test_q1_starter_is_not_answered(course: Course) -> None:
    passed, said = verdict(Q1.bind(course).check, blueprint(Q1.starter, "q1_blank"))
    assert not passed and said.startswith("Not answered yet")


def q2_answer(key: str, decorator: str | None, name: str) -> Blueprint:
    source = Q2.starter.replace("    return ____", f"    return {key}")
    if decorator is not None:
        source = source.replace('@q2_views.get("/me/orders")\n', f'@q2_views.get("/me/orders")\n{decorator}\n')
    return blueprint(source, name)


def test_q2_is_proven(course: Course) -> None:
    own_key = "@cache.cached(timeout=300, key_prefix=my_orders_key)"
    prove(
        Q2.bind(course).check,
        right=[
            blueprint(str(Q2.solution), "q2_solution"),
            q2_answer(
                "None",
                "@cache.cached(timeout=60, make_cache_key=lambda: "
                "f\"orders:{current_customer_id()}:{request.args.get('limit', '5')}\")",
                "q2_b",
            ),
        ],
        wrong=[
            (q2_answer("None", "@cache.cached(timeout=300, query_string=True)", "q2_query"), "as customer"),
            (q2_answer('f"me/{current_customer_id()}"', own_key, "q2_customer"), "limit=10 as customer"),
            (q2_answer('"me/orders"', own_key, "q2_constant"), "got the answer cached for"),
            (q2_answer("None", None, "q2_uncached"), "Not answered yet"),
        ],
    )


Q3_READ_AFTER = """    session = get_session()
    session.execute(update(Order).where(Order.id == order_id).values(customer_id=new_owner))
    session.commit()
    old_owner = session.scalar(select(Order.customer_id).where(Order.id == order_id))  # read too late
    cache.delete_memoized(order_summary, old_owner)
    cache.delete_memoized(order_summary, new_owner)"""
Q3_ORM = """    session = get_session()
    order = session.get(Order, order_id)
    owners = (order.customer_id, new_owner)
    order.customer_id = new_owner
    session.commit()
    for customer_id in owners:
        cache.delete_memoized(order_summary, customer_id)"""


def q3_answer(body: str, name: str) -> Blueprint:
    return blueprint(Q3.starter.replace("    ____", body), name)


def q3_invalidating(delete: str, name: str) -> Blueprint:
    body = (
        "    session = get_session()\n"
        "    old_owner = session.scalar(select(Order.customer_id).where(Order.id == order_id))\n"
        "    session.execute(update(Order).where(Order.id == order_id).values(customer_id=new_owner))\n"
        "    session.commit()\n" + delete
    )
    return q3_answer(body, name)


def test_q3_is_proven(course: Course) -> None:
    with private_copy(course, "test06-q3") as lab:
        with lab.session() as session:
            owners = {i: c for i, c in session.execute(select(Order.id, Order.customer_id))}
        prove(
            Q3.bind(lab).check,
            right=[blueprint(str(Q3.solution), "q3_solution"), q3_answer(Q3_ORM, "q3_orm")],
            wrong=[
                (q3_invalidating("    pass", "q3_none"), "(the customer who got the order) still showed"),
                (
                    q3_invalidating("    cache.delete_memoized(order_summary, new_owner)", "q3_new_only"),
                    "(the customer who gave it up) still showed",
                ),
                (q3_answer(Q3_READ_AFTER, "q3_late"), "(the customer who gave it up) still showed"),
                (q3_invalidating("    cache.delete_memoized(order_summary)", "q3_all"), "was dropped too"),
                (q3_invalidating("    cache.clear()", "q3_clear"), "was dropped too"),
            ],
        )
        with lab.session() as session:  # every check put the order back where it was
            assert {i: c for i, c in session.execute(select(Order.id, Order.customer_id))} == owners


def test_q4_is_proven(course: Course) -> None:
    smallest = smallest_threshold(course)
    pages, target = q4_target(course)
    assert hit_ratio(pages, smallest) >= target > hit_ratio(pages, smallest - 1)
    prove(
        Q4.bind(course).check,
        right=[smallest, float(smallest + 1)],
        wrong=[
            (len(set(pages)) * 2, "look for the smallest"),
            (max(1, smallest // 3), "it needs more entries"),
            (round(target, 3), "whole number"),
            ("36", "whole number"),
            (0, "at least one entry"),
        ],
    )


def test_q4_starter_prints_the_target_and_is_not_answered(course: Course) -> None:
    pages = {"product pages": q4_target(course)[0]}
    namespace = cell(Q4.starter, "q4_blank", pages=pages)
    assert namespace["target"] == pytest.approx(q4_target(course)[1])
    passed, said = verdict(Q4.bind(course).check, namespace["smallest_threshold"])
    assert not passed and said.startswith("Not answered yet")


def test_q4_solution_finds_the_smallest_threshold(course: Course) -> None:
    pages = {"product pages": q4_target(course)[0]}
    namespace = cell(Q4.starter, "q4_pages", pages=pages, hit_ratio=hit_ratio)
    exec(str(Q4.solution), namespace)
    assert namespace["smallest_threshold"] == smallest_threshold(course)


def test_the_race_runs_without_your_view_until_it_is_written(
    course: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    slow, fast = race_report(course, blueprint(Q1.starter, "q1_race_blank"), prediction=Prediction(speedup=3))
    assert [m.variant for m in slow.measurements] == ["uncached", "the course's cached view"]
    assert "still has ____ in it: the race runs without it" in capsys.readouterr().out
    mine = blueprint(str(Q1.solution), "q1_race")
    slow, fast = race_report(course, mine, prediction=Prediction(speedup=3, statements=0))
    assert [m.variant for m in slow.measurements] == ["uncached", "yours", "the course's cached view"]
    assert slow["yours"].statements == 0 and slow["uncached"].statements == 2  # hits: warmed before the clock
    assert slow.roles == {"uncached": "naive", "yours": "best"} and fast.role("floor") is not None
    stored = results.predictions(course.lesson)
    assert stored.iloc[-1]["best"] == "yours" and stored.iloc[-1]["measured_statements"] == 0
    close_apps()


def test_delete_cached_on_a_blueprint_view_needs_a_path() -> None:
    app = Flask("paths")
    store = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    views = Blueprint("profile", __name__)

    @views.get("/customers/<int:customer_id>/profile")
    @store.cached(timeout=300)
    def customer_profile(customer_id: int) -> dict[str, int]:
        return {"id": customer_id}

    app.register_blueprint(views)
    app.test_client().get("/customers/7/profile")
    with app.test_request_context("/"):
        with pytest.raises(BuildError, match=r"Did you mean 'profile\.customer_profile'"):
            store.delete_cached(customer_profile, customer_id=7)
        assert store.delete_cached(customer_profile, path=url_for("profile.customer_profile", customer_id=7))


# ---------------------------------------------------------------------- improve the app
@pytest.fixture
def kept(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path


MEMOIZED = (
    IMPROVE_STARTER.split("\n\n\nmy_views = ")[0]
    + """


@cache.memoize(timeout=300)
def report_for(days, status, min_total):  # the parameters are the key
    return report_data()


my_views = Blueprint("my_views", __name__)


@my_views.get("/reports/sales")
def sales_report():
    args = request.args
    return report_for(args.get("days", ""), args.get("status", ""), args.get("min_total", ""))


@my_views.after_app_request
def forget_reports(response):
    if request.method == "POST" and request.path == "/orders" and response.status_code < 400:
        cache.delete_memoized(report_for)
    return response
"""
)


def improve_variant(old: str, new: str, name: str) -> Blueprint:
    assert old in IMPROVE_SOLUTION
    return blueprint(IMPROVE_SOLUTION.replace(old, new), name)


def test_improve_is_proven_and_keeps_the_report(course: Course, kept: Any) -> None:
    with private_copy(course, "test06-improve") as lab:
        orders = lab.info.rows["orders"]
        hook = '    if request.method == "POST" and request.path == "/orders" and response.status_code == 201:\n'
        bump = '        cache.set("reports/generation", (cache.get("reports/generation") or 0) + 1, timeout=0)\n'
        own_post = (
            '\n\n@my_views.post("/orders")\ndef place_and_forget():\n'
            '    cache.set("reports/generation", (cache.get("reports/generation") or 0) + 1)\n'
            "    return {}, 201\n"
        )
        prove(
            improve_task(lab).check,
            right=[blueprint(IMPROVE_SOLUTION, "improve_generation"), blueprint(MEMOIZED, "improve_memoized")],
            wrong=[
                (
                    improve_variant(
                        "@cache.cached(timeout=600, make_cache_key=report_key)",
                        "@cache.cached(timeout=600, query_string=True)",
                        "improve_query",
                    ),
                    "a parameter the report does not read made a new entry",
                ),
                (improve_variant(bump, "        pass\n", "improve_stale"), "still showed the report from before"),
                (improve_variant(bump, "        cache.clear()\n", "improve_clear"), "not cache.clear()"),
                (
                    improve_variant(
                        bump, '        cache.set("reports/generation", 1, timeout=0)\n', "improve_once"
                    ),
                    "drop the entries after every order",
                ),
                (improve_variant(hook, "    if True:  # every request\n", "improve_always"), "not answered from"),
                (
                    blueprint(IMPROVE_SOLUTION + own_post, "improve_post"),
                    "your blueprint also serves POST /orders",
                ),
                (
                    improve_variant(
                        "@cache.cached(timeout=600, make_cache_key=report_key)",
                        "@cache.cached(timeout=600)",
                        "improve_path",
                    ),
                    "GET /reports/sales?days=30",
                ),
            ],
        )
        saved = (kept / "my_app" / "06_sales_report.py").read_text()
        assert "def report_key" in saved or "def report_for" in saved
        assert "@my_views.after_app_request" in saved and "flask_caching" not in saved
        with lab.session() as session:  # the orders the checks placed are gone again
            assert session.scalar(select(func.count()).select_from(Order)) == orders


def test_improve_starter_is_not_answered_and_the_race_still_runs(
    course: Course, kept: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    task = improve_task(course)
    starter = blueprint(IMPROVE_STARTER, "improve_blank")
    assert not task.check(starter)
    assert "Not answered yet" in capsys.readouterr().out
    race = task.race(starter, reference=True)
    assert [m.variant for m in race.measurements] == ["baseline (lesson 01)", "the course's version"]
    assert not (kept / "my_app" / "06_sales_report.py").exists()


def test_improve_hints_and_solution(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    task = improve_task(course)
    task.hint()
    task.hint(2)
    out = capsys.readouterr().out
    assert "Hint 1 of 2" in out and "after_app_request" in out
    task.solution()
    assert "____" not in IMPROVE_SOLUTION


@pytest.mark.redis
def test_improve_passes_on_redis(course: Course, kept: Any) -> None:
    shared = dataclasses.replace(course, settings=dataclasses.replace(course.settings, cache="redis"))
    with private_copy(shared, "test06-improve-redis") as lab:
        assert verdict(improve_task(lab).check, blueprint(IMPROVE_SOLUTION, "improve_redis"))[0]


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
