"""The capstone: lesson 01's baseline, the course's finished app and the learner's, endpoint by endpoint and under
load, and the course-wide summary of the results store.

* `CapstoneLab(course, yours=my_app)` gives each app a copy of the dataset of its own (the load places orders)
  with one order placed today in each (`report_window_days` says why), the apps for the test client (`apps`),
  the same apps on waitress in processes of their own with a bare Flask floor (`serve`, `pools` read back from
  the servers), and locust runs against them (`load`, `open_loop`; every run kept in `runs`);
* `race_endpoints(course, apps, requests)`: each endpoint in every app side by side, statements read from the
  timed calls' own headers, and a cached endpoint's miss and hit as two rows;
* `properties(apps, requests)`: per endpoint and app, statements on a first and on a repeated request, cached,
  and whether a `POST /orders` drops the cached answer;
* `predict_load` / `LoadPrediction`: the learner's throughput and p95 for a number of users, beside what was
  measured (`prediction_table`), the throughput kept with the results (`store_load_prediction`);
* `under_load(race)`: which apps to load (the baseline is left out where its endpoints take too long alone);
  `served_by`: which saved answer serves each endpoint of the learner's app; `loop_table`: closed beside open;
* `slowest(runs)`: the endpoint with the longest mean latency under load and the layer inside the app its time
  went to (`CAUSES`), what lesson 10's exercise checks;
* `course_summary(stored)` reduces every stored comparison to the variants declared naive and best (never by
  position); `predictions_table`, `summary_chart`, `endpoint_chart`, `percentile_chart`, `layer_chart`;
  `load_demo` for instructors.
"""

from __future__ import annotations

import secrets
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import pandas as pd
from flask import Flask
from IPython.display import display
from sqlalchemy import func, select

from ..course import Course
from ..data import drop_copy
from ..measure import results
from ..measure.harness import Comparison, Measurement, check_same, run_variants
from ..measure.plots import COLORS
from ..measure.predictions import Prediction
from ..servers.wsgi import Served, serve_in_process
from ..shop import baseline, optimized
from ..shop.caching import cache
from ..shop.models import Customer, Order, OrderLine, Product
from ..shop.orders import placed_at
from .caching import post
from .loadtest import (
    ALL,
    POOL_LINE,
    ShopRequest,
    ShopRun,
    layers,
    load_statistics,
    run_load,
    run_shop_load,
    serve_floor,
)
from .profiling import report_days

__all__ = [
    "APPS",
    "BASELINE",
    "CAUSES",
    "FINISHED",
    "FLOOR",
    "LOAD_LIMIT_S",
    "LOAD_STATISTICS",
    "ORDER_BODY",
    "STATEMENT_HEAVY",
    "YOURS",
    "CapstoneLab",
    "EndpointRace",
    "LoadPrediction",
    "Slowest",
    "course_summary",
    "endpoint_chart",
    "layer_chart",
    "load_demo",
    "loop_table",
    "percentile_chart",
    "predict_load",
    "prediction_table",
    "predictions_table",
    "properties",
    "race_endpoints",
    "report_window_days",
    "served_by",
    "shop_requests",
    "slowest",
    "store_load_prediction",
    "summary_chart",
    "under_load",
]

BASELINE = "baseline (lesson 01)"
FINISHED = "finished (the course's)"
YOURS = "yours"
APPS = (BASELINE, FINISHED, YOURS)
FLOOR = "bare Flask view (floor)"


def _colour(app: str) -> str:
    """Each app in the same colour in every chart of the lesson (the baseline red, finished blue, yours green)."""
    known = (BASELINE, FINISHED, YOURS, FLOOR)
    return COLORS[known.index(app)] if app in known else COLORS[4 + sum(map(ord, app)) % (len(COLORS) - 4)]


_SLUGS = {BASELINE: "baseline", FINISHED: "finished", YOURS: "yours"}
_SERVED_AS = {BASELINE: "baseline", FINISHED: "optimized", YOURS: "mine"}  # `python -m helpers app --views`
# The order the load places: another customer than the page it reads, so that page does not grow as orders come.
_CUSTOMER, _LINES = 2, ((3, 2), (7, 1))  # (product, quantity)
ORDER_BODY: dict[str, Any] = {
    "customer_id": _CUSTOMER,
    "lines": [{"product_id": p, "quantity": q} for p, q in _LINES],
}


# ---------------------------------------------------------------------------------------- the requests
def report_window_days(course: Course) -> int:
    """The sales report's `days` in the capstone: the dataset's last few days of orders and every day since.

    The report counts its window back from the newest order, and `POST /orders` places orders today, long after
    the dataset's newest: after the first order placed, `?days=3` would report on that order alone. So every app's
    copy gets one order placed today before anything is measured, and the report asks for the days from the
    dataset's newest order to today plus the lessons' window (`profiling.report_days`): the same orders, before
    and during the load.
    """
    with course.engine.connect() as conn:
        newest = conn.scalar(select(func.max(Order.created_at)))
    newest = datetime.fromisoformat(newest) if isinstance(newest, str) else newest
    gap = (placed_at().date() - newest.date()).days if newest is not None else 0
    return max(0, gap) + report_days(course.info.rows["orders"])


def shop_requests(days: int) -> list[ShopRequest]:
    """The capstone's five requests and their weights in a cycle: mostly browsing, one order placed in twelve."""
    return [
        ShopRequest("customer page", "GET", "/customers/1", 4),
        ShopRequest("order list", "GET", "/orders?page=1&per_page=20", 3),
        ShopRequest("search", "GET", "/search?city=Lisbon&name=an&limit=20", 2),
        ShopRequest("sales report", "GET", f"/reports/sales?days={days}", 2),
        ShopRequest("place an order", "POST", "/orders", 1, ORDER_BODY),
    ]


def _place_first_order(copy: Course, when: datetime) -> None:
    """The order `ORDER_BODY` describes, placed at `when`, written straight into a copy (the same row in each)."""
    with copy.session() as session:
        address = session.scalar(select(Customer.address).where(Customer.id == _CUSTOMER))
        prices = dict(session.execute(select(Product.id, Product.price).where(Product.id.in_(dict(_LINES)))).all())
        order = Order(
            customer_id=_CUSTOMER,
            status="pending",
            created_at=when,
            total=sum(quantity * prices[product] for product, quantity in _LINES),
            shipping_address=address,
            note=None,
        )
        session.add(order)
        session.flush()
        for product, quantity in _LINES:
            session.add(
                OrderLine(order_id=order.id, product_id=product, quantity=quantity, unit_price=prices[product])
            )
        session.commit()


# ---------------------------------------------------------------------------------------- the three apps
class CapstoneLab:
    """The three apps, each on a copy of its own, through the test client and on real servers under locust.

    `yours(course, fallback, **config)` builds the learner's app (`saved_views.my_app`: their composed endpoints,
    `fallback`'s views for the rest, their pool). The finished app runs on the course's pool
    (`optimized.ENGINE_OPTIONS`), the baseline on SQLAlchemy's default. Each app's cache has a key prefix of its
    own, so that on a shared Redis none starts with another's entries.
    """

    def __init__(self, course: Course, *, yours: Callable[..., Flask]) -> None:
        self.course = course
        self.days = report_window_days(course)
        self.requests = shop_requests(self.days)
        self.copies: dict[str, Course] = {}
        when = placed_at()
        for name in APPS:
            copy = course.private_copy(f"capstone_{_SLUGS[name]}")
            if name != BASELINE:  # the finished views rely on lesson 04-05's indexes, as `make app` serves them
                optimized.create_indexes(copy.engine)
            _place_first_order(copy, when)
            self.copies[name] = copy
        run = secrets.token_hex(4)
        self.prefixes = {name: f"capstone-{run}-{_SLUGS[name]}" for name in APPS}
        self.apps: dict[str, Flask] = {
            BASELINE: self.copies[BASELINE].app(CACHE_KEY_PREFIX=self.prefixes[BASELINE] + ":"),
            FINISHED: self.copies[FINISHED].app(
                views=optimized.bp,
                ENGINE_OPTIONS=optimized.ENGINE_OPTIONS,
                CACHE_KEY_PREFIX=self.prefixes[FINISHED] + ":",
            ),
            YOURS: yours(self.copies[YOURS], baseline.bp, CACHE_KEY_PREFIX=self.prefixes[YOURS] + ":"),
        }
        self.servers: dict[str, Served] = {}
        self.pools: dict[str, dict[str, Any]] = {}
        self.runs: list[ShopRun] = []

    # ------------------------------------------------------------------ on real servers
    def serve(self, apps: Sequence[str] = APPS) -> pd.DataFrame:
        """Each app on waitress (8 threads) in a process of its own, as `make app` serves it, and a bare Flask
        view answering the finished app's JSON (the floor); every server warmed up. Returns each server's pool,
        as the server read it back from its engine when it started."""
        for name in dict.fromkeys([*apps, FINISHED]):  # the finished app's answers are the floor's
            copy = self.copies[name].url.render_as_string(hide_password=False)
            env = {"COURSE_CACHE_KEY_PREFIX": f"{self.prefixes[name]}-served:"}
            server = serve_in_process(views=_SERVED_AS[name], database_url=copy, env=env)
            self.servers[name] = server
            self.pools[name] = _read_pool(server)
        answers = []
        for request in self.requests:
            if request.method == "GET":
                status, _, body = self.servers[FINISHED].get(request.path)
                answers.append(("GET", request.path, status, _json(body)))
            else:
                status, placed = post(self.servers[FINISHED], request.path, request.body)
                answers.append((request.method, request.path, status, placed))
        self.servers[FLOOR] = serve_floor(answers)
        gets = [r.path for r in self.requests if r.method == "GET"]
        for server in self.servers.values():  # pooled connections opened, caches and the interpreter warm
            run_load(server.url, gets, concurrency=8, requests=8 * len(gets))
        return pd.DataFrame({name: self.pools[name] for name in apps}).T.rename_axis("app (as served)")

    def load(
        self, users: int, *, apps: Sequence[str], runs: int, seconds: float, longest_s: float, each: int
    ) -> list[ShopRun]:
        """`runs` closed-loop runs of `users` users against each of `apps` (the floor included if named), taking
        turns. Each run is measured for `seconds`, or longer, up to `longest_s`, until every request of the mix
        has `each` answers (a slow app's percentiles need answers too)."""
        made = []
        for i in range(runs):
            for name in [*apps[i % len(apps) :], *apps[: i % len(apps)]]:
                url = self.servers[name].url
                load = partial(run_shop_load, url, self.requests, app=name, users=users)
                made.append(load(seconds=seconds, longest_s=longest_s, each=each))
        self.runs += made
        return made

    def open_loop(self, app: str, *, rate_rps: float, seconds: float) -> ShopRun:
        """One open-loop run: requests arriving at `rate_rps` a second on `app`, whether or not it keeps up."""
        run = run_shop_load(self.servers[app].url, self.requests, app=app, rate_rps=rate_rps, seconds=seconds)
        self.runs.append(run)
        return run

    def runs_of(
        self, *, users: int | None = None, app: str | None = None, open_loop: bool = False
    ) -> list[ShopRun]:
        """The kept runs at `users` (closed loop) or the open-loop ones, of one app or all."""
        return [
            r
            for r in self.runs
            if (r.users is None) == open_loop and users in (None, r.users) and app in (None, r.app)
        ]

    def close(self) -> None:
        """Stop the servers, empty the apps' caches (on a shared Redis, their keys would stay), close the apps'
        engines and remove the copies."""
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        for name, app in self.apps.items():
            for prefix in (f"{self.prefixes[name]}:", f"{self.prefixes[name]}-served:"):
                _clear_caches([_cache_only(app, prefix)])
            app.extensions["engine"].dispose()
        for copy in self.copies.values():
            copy.engine.dispose()
            drop_copy(copy.url)


def _json(body: bytes) -> Any:
    import json  # deferred: only the floor's answers are read here

    return json.loads(body)


def _read_pool(server: Served) -> dict[str, Any]:
    """The pool the server printed when it started (`serving.POOL_LINE`), read back from its engine."""
    import json  # deferred: see _json

    for line in server.said().splitlines():
        if line.startswith(POOL_LINE):
            return dict(json.loads(line.removeprefix(POOL_LINE)))
    return {}


def served_by(app: Flask, requests: Sequence[ShopRequest], described: Mapping[str, str]) -> pd.DataFrame:
    """Per request, the view of `app` that answers it and where it comes from: a saved answer's blueprint is named
    after its file (`my_09_sales_report`), whose description (`saved_views.Composed.description`) `described`
    holds by that name; the views not rewritten yet are the baseline's."""
    urls = app.url_map.bind("localhost")
    rows = []
    for request in requests:
        endpoint, _ = urls.match(request.path.split("?")[0], method=request.method)
        blueprint, _, view = str(endpoint).rpartition(".")
        saved = blueprint.removeprefix("my_")
        rows.append(
            {
                "endpoint": request.name,
                "request": f"{request.method} {request.path}",
                "view": view,
                "served by": f"data/my_app/{saved}.py" if blueprint.startswith("my_") else "the baseline's view",
                "composed of": described.get(blueprint, "not rewritten yet"),
            }
        )
    return pd.DataFrame(rows).set_index("endpoint")


# ---------------------------------------------------------------------------------------- endpoint by endpoint
class _Caller:
    """One request through a test client, keeping the statement count each answer's `X-Statements` header gave:
    the harness counts statements on its untimed warm-up call, a cache's miss, where the timed calls are hits."""

    def __init__(self, client: Any, request: ShopRequest) -> None:
        self.client, self.request, self.statements = client, request, list[int]()

    def __call__(self) -> Any:
        response = self.client.open(self.request.path, method=self.request.method, json=self.request.body)
        self.statements.append(int(response.headers.get("X-Statements", -1)))
        return response


def _answer(response: Any) -> Any:
    """What every app must answer alike: the status and the JSON, without the finished order list's keyset cursor
    (`next`, lesson 05) and a placed order's id and time (each copy places its own)."""
    body = response.get_json(silent=True)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("next", "id", "created_at")}
    return response.status_code, body


def _clear_caches(apps: Iterable[Flask]) -> None:
    for app in apps:
        with app.app_context():
            cache.clear()  # with a key prefix, on Redis: that prefix's keys only


def _cache_only(app: Flask, prefix: str) -> Flask:
    """An app with nothing but `app`'s cache settings, under another key prefix (a served copy's cache)."""
    scratch = Flask("cache")
    scratch.config.update({k: v for k, v in app.config.items() if k.startswith("CACHE_")}, CACHE_KEY_PREFIX=prefix)
    cache.init_app(scratch)
    return scratch


@dataclass
class EndpointRace:
    """Every endpoint in every app, side by side: `comparisons` by endpoint, and `misses`, the cached endpoints
    timed again with every cache emptied before each call (untimed)."""

    comparisons: dict[str, Comparison]
    misses: dict[str, Comparison] = field(default_factory=dict)

    @property
    def frame(self) -> pd.DataFrame:
        """One row per endpoint, app and kind of call (a cached endpoint's hit and miss apart): median, spread,
        runs and the statements of the timed calls."""
        parts = []
        for endpoint, race in self.comparisons.items():
            missed = self.misses.get(endpoint)
            for m in race.measurements:
                cached = missed is not None and m.statements == 0 and missed[m.variant].statements
                call = "cache hit" if cached else "every call"
                parts.append({"endpoint": endpoint, "app": m.variant, "call": call, **_row(m, race.baseline)})
                if cached and missed is not None:
                    miss = missed[m.variant]
                    parts.append(
                        {"endpoint": endpoint, "app": m.variant, "call": "cache miss", **_row(miss, race.baseline)}
                    )
        return pd.DataFrame(parts).set_index(["endpoint", "app", "call"])


def _row(m: Measurement, base: Measurement) -> dict[str, Any]:
    return {
        "median_ms": m.median_s * 1000,
        "iqr_ms": m.spread_s * 1000,
        "runs": m.runs,
        "statements": m.statements,
        "× baseline": base.median_s / m.median_s,
    }


def _timed_statements(m: Measurement, caller: _Caller, warmup: int = 1) -> None:
    """The measurement's statements from its timed calls (the median: they are equal unless the app varies)."""
    timed = caller.statements[warmup:] or caller.statements
    m.statements = int(statistics.median(timed))


def race_endpoints(
    course: Course, apps: Mapping[str, Flask], requests: Sequence[ShopRequest], *, repeat: int = 5
) -> EndpointRace:
    """Each request in every app through the test client, side by side, every app checked to answer as the first;
    a cached endpoint is timed once more, every cache emptied before each call: its misses."""
    comparisons, misses = {}, {}
    engines = [app.extensions["engine"] for app in apps.values()]
    for request in requests:
        callers = {name: _Caller(app.test_client(), request) for name, app in apps.items()}
        race = course.compare(
            dict(callers),
            engine=engines,
            check=_answer,
            title=f"capstone: {request.name}",
            repeat=repeat,
            budget_s=8,  # the baseline's slowest endpoints take a second a call at larger sizes: 3 rounds at least
            store=False,
        )
        for m in race.measurements:
            _timed_statements(m, callers[m.variant])
        results.store(race)
        comparisons[request.name] = race
        cached = [name for name in apps if race[name].statements == 0 and callers[name].statements[0] > 0]
        if cached:
            misses[request.name] = _misses(course, {name: apps[name] for name in cached}, request, repeat)
    return EndpointRace(comparisons, misses)


def _misses(course: Course, apps: Mapping[str, Flask], request: ShopRequest, repeat: int) -> Comparison:
    callers = {name: _Caller(app.test_client(), request) for name, app in apps.items()}
    measured = run_variants(
        dict(callers),
        engine=[app.extensions["engine"] for app in apps.values()],
        repeat=repeat,
        budget_s=8,
        reset=partial(_clear_caches, apps.values()),
    )
    check_same(measured, _answer)
    for m in measured:
        _timed_statements(m, callers[m.variant])
    return Comparison("10", course.backend, course.size, measured, f"capstone: {request.name} (cache misses)")


def _grouped(
    fig: Any,
    ax: Any,
    ticks: Sequence[float],
    endpoints: Sequence[str],
    title: str,
    xlabel: str,
    handles: Sequence[Any] | None = None,
) -> Any:
    """Label a chart of horizontal bars grouped by endpoint, each group's label at `ticks` (log scale, first
    endpoint on top); the legend from `handles`, or from the bars' labels."""
    ax.set_yticks(ticks, endpoints)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(xlabel=xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(**({"handles": handles} if handles is not None else {}), fontsize=7, loc="lower right")
    return fig


def endpoint_chart(race: EndpointRace, *, title: str) -> Any:
    """One group of bars per endpoint, one bar per app and call, its median time per request (log scale): each app
    in one colour, a cached endpoint's miss hatched beside its hit."""
    from matplotlib.patches import Patch  # deferred: matplotlib's pieces only where a chart is drawn

    frame = race.frame.reset_index()
    apps = list(dict.fromkeys(frame["app"]))
    colour = {app: _colour(app) for app in apps}
    endpoints = list(dict.fromkeys(frame["endpoint"]))
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.32 * len(frame) + 0.25 * len(endpoints)), layout="constrained")
    y, ticks = 0.0, []
    for endpoint in endpoints:
        rows = frame[frame["endpoint"] == endpoint]
        ticks.append(y + (len(rows) - 1) / 2)
        for row in rows.itertuples():
            miss = row.call == "cache miss"
            ax.barh(y, row.median_ms, height=0.85, color=colour[row.app], alpha=0.55 if miss else 1.0,
                    hatch="///" if miss else None, edgecolor="white" if miss else None)  # fmt: skip
            if row.call != "every call":
                ax.annotate(f" {row.call}", (row.median_ms, y), va="center", fontsize=7)
            y += 1
        y += 0.8  # a gap between endpoints
    handles = [Patch(color=colour[app], label=app) for app in apps]
    if (frame["call"] == "cache miss").any():
        miss = Patch(facecolor="#999999", alpha=0.55, hatch="///", edgecolor="white", label="a cache miss")
        handles.append(miss)
    return _grouped(fig, ax, ticks, endpoints, title, "median time per request (ms, log scale)", handles)


# ---------------------------------------------------------------------------------------- what each endpoint has
def properties(apps: Mapping[str, Flask], requests: Sequence[ShopRequest]) -> pd.DataFrame:
    """Per endpoint and app, measured through the test client on a cache emptied first: statements on a first and
    on a repeated request, whether the repeat came from the cache, and for a cached GET whether a `POST /orders`
    dropped its entry (the next request ran statements again). Places one order in every app's copy."""
    _clear_caches(apps.values())
    order = next(r for r in requests if r.method == "POST")
    rows = []
    for request in requests:
        for name, app in apps.items():
            client = app.test_client()
            first, again = _Caller(client, request), _Caller(client, request)
            first(), again()
            cached = request.method == "GET" and again.statements[0] == 0 < first.statements[0]
            dropped = None
            if cached:
                _Caller(client, order)()
                after = _Caller(client, request)
                after()
                dropped = after.statements[0] > 0
            rows.append(
                {
                    "endpoint": request.name,
                    "app": name,
                    "statements (first)": first.statements[0],
                    "statements (repeat)": again.statements[0],
                    "cached": cached,
                    "POST /orders drops it": "–"
                    if dropped is None
                    else ("yes" if dropped else "no: stale until it expires"),
                }
            )
    return pd.DataFrame(rows).set_index(["endpoint", "app"])


LOAD_LIMIT_S = 0.5  # a baseline whose endpoint takes longer alone is left out of the load (see `under_load`)
# The columns of `loadtest.load_statistics` the capstone's tables show.
LOAD_STATISTICS = [
    "runs", "requests", "throughput_rps", "throughput_rps_min", "throughput_rps_max", "p50_ms", "p95_ms",
    "p95_ms_min", "p95_ms_max", "p99_ms", "failures",
]  # fmt: skip


def under_load(race: EndpointRace) -> tuple[list[str], str]:
    """The apps to load, and a sentence if the baseline is left out: when one of its endpoints takes more than
    `LOAD_LIMIT_S` alone (larger datasets), 16 users would get a handful of answers a run, each after seconds in
    the queue: runs minutes long, and percentiles of a few samples. The finished app and yours are always
    loaded."""
    slowest_alone = {name: max(race.comparisons.items(), key=lambda item: item[1][name].median_s) for name in APPS}
    left_out = {
        name: item
        for name, item in slowest_alone.items()
        if name == BASELINE and item[1][name].median_s > LOAD_LIMIT_S
    }
    apps = [name for name in APPS if name not in left_out]
    said = " ".join(
        f"{name} is left out of the load: its {endpoint} takes {comparison[name].median_s:.2f} s alone, and with "
        "16 users each request would wait for many others: runs of minutes, percentiles of a few answers."
        for name, (endpoint, comparison) in left_out.items()
    )
    return apps, said


# ---------------------------------------------------------------------------------------- under load: charts
def percentile_chart(stats: pd.DataFrame, *, load: str, title: str) -> Any:
    """Per endpoint, each app's p95 under `load` (bars, the lowest and highest run as a whisker) and its p50 (a
    dot), log scale: `stats` from `loadtest.load_statistics`."""
    part = stats.xs(load, level="load")
    apps = list(dict.fromkeys(part.index.get_level_values("app")))
    endpoints = [e for e in dict.fromkeys(part.index.get_level_values("endpoint")) if e != ALL] + [ALL]
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.32 * len(endpoints) * len(apps)), layout="constrained")
    height = 0.8 / len(apps)
    for i, app in enumerate(apps):
        rows = part.loc[app].reindex(endpoints)
        ys = [y + i * height for y in range(len(endpoints))]
        low, high = rows["p95_ms"] - rows["p95_ms_min"], rows["p95_ms_max"] - rows["p95_ms"]
        ax.barh(ys, rows["p95_ms"], height=height, color=_colour(app), label=f"{app}: p95",
                xerr=[low, high], error_kw={"elinewidth": 0.8, "capsize": 2})  # fmt: skip
        ax.plot(rows["p50_ms"], ys, "o", color="black", markersize=3, label="p50" if i == 0 else None)
    xlabel = "latency (ms, log scale): p95 bar with the lowest and highest run, p50 dot"
    ticks = [y + height * (len(apps) - 1) / 2 for y in range(len(endpoints))]
    return _grouped(fig, ax, ticks, endpoints, title, xlabel)


def layer_chart(where: pd.DataFrame, *, title: str) -> Any:
    """Per endpoint, its mean latency split into the layers of `loadtest.layers` (stacked bars, ms)."""
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.4 * len(where)), layout="constrained")
    left = pd.Series(0.0, index=where.index)
    for i, layer in enumerate(("waiting", "python", "database")):
        ax.barh(where.index, where[f"{layer}_ms"], left=left, color=COLORS[(i + 4) % len(COLORS)], label=layer)
        left += where[f"{layer}_ms"]
    ax.invert_yaxis()
    ax.set_xlabel("mean latency per request (ms), by where it went")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def loop_table(closed: Sequence[ShopRun], arrivals: ShopRun) -> pd.DataFrame:
    """The closed-loop runs (their median) beside an open-loop run: throughput, mean and percentile latencies,
    and the most requests in flight at once."""
    rows = {}
    for label, runs in (
        (f"{closed[0].users} users, closed loop", closed),
        (f"{arrivals.rate_rps:.0f}/s arriving, open loop", [arrivals]),
    ):
        stats = load_statistics(runs).xs(ALL, level="endpoint").iloc[0]
        rows[label] = {
            "runs": len(runs),
            "throughput_rps": stats["throughput_rps"],
            "mean_ms": stats["mean_ms"],
            "p50_ms": stats["p50_ms"],
            "p95_ms": stats["p95_ms"],
            "p99_ms": stats["p99_ms"],
            "most in flight": max(r.most_in_flight for r in runs),
        }
    return pd.DataFrame(rows).T


# ---------------------------------------------------------------------------------------- predict, then load
def _positive(text: str) -> float | None:
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        return None
    return value if 0 < value < float("inf") else None


class LoadPrediction:
    """Boxes for what a load will measure: requests per second, and the 95th percentile latency of all requests
    (ms). Empty boxes are no prediction, never an error."""

    def __init__(self, question: str, *, users: int) -> None:
        self.users = users
        style = {"description_width": "initial"}
        self.throughput = w.Text(placeholder="e.g. 150", description="requests per second:", style=style)
        self.p95 = w.Text(placeholder="e.g. 80", description="p95 of all requests (ms):", style=style)
        self.widget = w.VBox([w.HTML(f"<b>Your prediction.</b> {question}"), w.HBox([self.throughput, self.p95])])

    @property
    def throughput_rps(self) -> float | None:
        return _positive(self.throughput.value)

    @property
    def p95_ms(self) -> float | None:
        return _positive(self.p95.value)

    def _ipython_display_(self) -> None:
        display(self.widget)


def predict_load(question: str, *, users: int) -> LoadPrediction:
    """Show the boxes for a prediction of the load below and return them."""
    box = LoadPrediction(question, users=users)
    display(box)
    return box


def prediction_table(guess: LoadPrediction, stats: pd.DataFrame, *, app: str) -> pd.DataFrame:
    """What was predicted for `app` at `guess.users` users beside what the runs measured (median, lowest and
    highest run)."""
    measured = stats.loc[(app, f"{guess.users} users", ALL)]
    rows = {}
    for label, stat, predicted in (
        ("requests per second", "throughput_rps", guess.throughput_rps),
        ("p95 of all requests (ms)", "p95_ms", guess.p95_ms),
    ):
        rows[label] = {
            "you predicted": predicted,
            "measured (median)": measured[stat],
            "lowest run": measured[f"{stat}_min"],
            "highest run": measured[f"{stat}_max"],
            "measured ÷ predicted": measured[stat] / predicted if predicted else None,
        }
    return pd.DataFrame(rows).T


def store_load_prediction(
    course: Course, low: Sequence[ShopRun], high: Sequence[ShopRun], guess: LoadPrediction | None
) -> Comparison:
    """Keep an app's throughput at two loads as a comparison (seconds per request served, one sample per run): the
    lower load declared naive, the higher best, and the predicted throughput as the speed-up it implies, so that
    `results.predictions()` holds it beside what was measured."""
    measurements = [
        Measurement(f"{runs[0].app}, {runs[0].users} users", [1 / r.throughput_rps for r in runs], None, None)
        for runs in (low, high)
    ]
    prediction = None
    if guess is not None and guess.throughput_rps is not None:
        low_rps = 1 / measurements[0].median_s
        prediction = Prediction(speedup=guess.throughput_rps / low_rps)
    comparison = Comparison(
        "10",
        course.backend,
        course.size,
        measurements,
        f"capstone: {high[0].app}, throughput at {high[0].users} users against {low[0].users}",
        roles={measurements[0].variant: "naive", measurements[1].variant: "best"},
        prediction=prediction,
    )
    results.store(comparison)
    return comparison


# ---------------------------------------------------------------------------------------- the slowest endpoint
STATEMENT_HEAVY = 10  # statements per request from which the database's time is mostly round trips (an N+1)
# Why an endpoint is slower than the others: what it does inside the app. The time every request waits before the
# app sees it (the server's queue, the cores) is the load's, shared by every endpoint, and shown beside.
CAUSES = {
    "python": "the app's Python: the view, the ORM building objects, Flask and JSON",
    "database": "its statements: the database scanning, sorting, adding up, writing, or waiting for a lock",
    "statements": f"its database time spread over many statements ({STATEMENT_HEAVY} or more a request: an N+1)",
}
_CLOSE = 0.8  # a layer within this share of the larger one is as much the cause


@dataclass(frozen=True)
class Slowest:
    """An app's slowest endpoint under load, by its mean latency over the runs, and where its time went."""

    endpoint: str
    latency_ms: float
    tied: tuple[str, ...]  # endpoints the runs cannot tell from it: their runs' mean latencies overlap its own
    causes: dict[str, tuple[str, ...]]  # per endpoint in `tied`: the causes its layers show
    layers: pd.DataFrame  # `loadtest.layers` of the runs


def _causes(row: pd.Series) -> tuple[str, ...]:
    ms = {layer: float(row[f"{layer}_ms"]) for layer in ("python", "database")}
    top = max(ms.values())
    found = [layer for layer, value in ms.items() if value >= _CLOSE * top]
    if "database" in found and row["statements"] >= STATEMENT_HEAVY:
        found[found.index("database")] = "statements"
    return tuple(found)


def slowest(runs: Sequence[ShopRun]) -> Slowest:
    """The endpoint whose requests took longest on average over `runs` (one app's, at one load), the endpoints
    whose runs' means overlap its own, and for each the layer inside the app its time went to: its Python or its
    statements (many statements: `statements`); a layer within 80% of the other counts too. The mean, not a
    percentile: the layers add up to it."""
    where = layers(runs).sort_values("latency_ms", ascending=False)
    top = where.iloc[0]
    tied = tuple(str(e) for e, row in where.iterrows() if row["latency_ms_max"] >= top["latency_ms_min"])
    causes = {endpoint: _causes(where.loc[endpoint]) for endpoint in tied}
    return Slowest(str(where.index[0]), float(top["latency_ms"]), tied, causes, where)


# ---------------------------------------------------------------------------------------- the whole course
def _declared_pairs(part: pd.DataFrame) -> list[tuple[pd.Series, pd.Series]]:
    """Per stored run of one comparison, its variants declared naive and best (runs lacking either left out)."""
    pairs = []
    for _, run in part.groupby("run_id", sort=False):
        naive, best = run[run["role"] == "naive"], run[run["role"] == "best"]
        if len(naive) and len(best):
            pairs.append((naive.iloc[0], best.iloc[0]))
    return pairs


def course_summary(stored: pd.DataFrame) -> pd.DataFrame:
    """Every lesson's stored comparison that declares its naive and best variants (not the capstone's own): the
    latest such run's pair, its speed-up, and how the speed-up of that same pair varied across reruns.

    Roles are read, never guessed from the order of the variants: a comparison stored without them (a table of
    different endpoints, a ladder of floors) is not a race between a naive way and a better one, and is left out.
    """
    rows = []
    for (lesson, comparison), part in stored.groupby(["lesson", "comparison"], sort=True):
        if not str(lesson).isdigit() or lesson == "10" or "role" not in part:
            continue
        pairs = _declared_pairs(part)
        if not pairs:
            continue
        naive, best = pairs[-1]
        same = [
            n["median_s"] / b["median_s"]
            for n, b in pairs
            if (n["variant"], b["variant"]) == (naive["variant"], best["variant"])
        ]
        rows.append(
            {
                "lesson": lesson,
                "comparison": comparison,
                "naive": naive["variant"],
                "naive_ms": naive["median_s"] * 1000,
                "best": best["variant"],
                "best_ms": best["median_s"] * 1000,
                "speedup": same[-1],
                "runs stored": len(same),
                "speedup min–max": f"{min(same):.1f}–{max(same):.1f}×",
            }
        )
    return pd.DataFrame(rows)


def summary_chart(summary: pd.DataFrame, *, title: str) -> Any:
    """The speed-up of every comparison (naive ÷ best, as declared), coloured by lesson, log scale."""
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.22 * len(summary)), layout="constrained")
    labels = [f"{row.lesson} · {row.comparison}"[:60] for row in summary.itertuples()]
    colors = [COLORS[int(lesson) % len(COLORS)] for lesson in summary["lesson"]]
    ax.barh(labels, summary["speedup"], color=colors)
    ax.axvline(1, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("naive ÷ best median (log scale; left of the line: the best was slower)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    return fig


def predictions_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The learner's predictions (`results.predictions()`), oldest first, beside what each race measured."""
    table = pd.DataFrame(
        {
            "lesson": frame["lesson"],
            "comparison": frame["comparison"],
            "naive → best": frame["naive"] + " → " + frame["best"],
            "you predicted (×)": frame["predicted_speedup"],
            "measured (×)": frame["measured_speedup"],
            "measured ÷ predicted": frame["measured_speedup"] / frame["predicted_speedup"],
            "statements: you predicted": frame["predicted_statements"],
            "statements: measured": frame["measured_statements"],
            "when": frame["measured_at"].dt.strftime("%Y-%m-%d %H:%M"),
        }
    )
    return table.reset_index(drop=True)


def load_demo(course: Course, *, users: int, yours: Callable[..., Flask], seconds: float = 2.0) -> None:
    """For instructors: the finished app, yours and the floor under `users` users, one run each, on fresh copies
    and servers (removed after): the table and the chart."""
    from ..measure.display import styled  # deferred: the notebook's display helpers, for this demo only
    from ..measure.plots import show_figure

    lab = CapstoneLab(course, yours=yours)
    try:
        lab.serve([FINISHED, YOURS])
        lab.load(users, apps=[FINISHED, YOURS, FLOOR], runs=1, seconds=seconds, longest_s=seconds, each=0)
        stats = load_statistics(lab.runs)
        display(styled(stats[["requests", "throughput_rps", "p50_ms", "p95_ms", "p99_ms", "failures"]]))
        show_figure(percentile_chart(stats, load=f"{users} users", title=f"{users} users, one run each"))
    finally:
        lab.close()
