"""`make app`: serve the finished, optimized shop on http://127.0.0.1:5000 with waitress.

The optimized views need the indexes lesson 04 teaches, so the app runs on its own copy of the dataset
(`shop-<size>.app.sqlite`, or the `shop_<size>__app` database) with those indexes, never on the lessons' data.
`--views baseline` serves the naive app, `--views mine` the endpoints you wrote in the lessons (saved under
data/my_app/, composed as `saved_views.compose` says), `--views package.module:blueprint` any importable Blueprint
(lesson 06 serves its demo views so); `--database-url` serves a given database as it is, with no copy and no
indexes added.

Each app runs on its own pool (`default_engine_options`): the finished app on the course's
(`optimized.ENGINE_OPTIONS`), yours on the options you saved in lesson 07 (SQLAlchemy's default pool until then),
the others on the default; `--engine-options` replaces them. The server prints the pool it runs with, read back
from the engine (`POOL_LINE`), so whoever started it can check. `COURSE_CACHE_KEY_PREFIX` gives its cache a key
prefix of its own (on a shared Redis, a cache that starts empty).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, Flask
from waitress import serve

from .config import settings
from .course import cache_config
from .data import copy_dataset, ensure_dataset
from .db import check_reachable, course_url, make_engine, parse_url
from .errors import CourseError
from .exercises.saved_views import assemble, my_engine_options, saved_files
from .shop.app import create_app
from .shop.baseline import bp
from .shop.baseline import bp as baseline
from .shop.optimized import ENGINE_OPTIONS, create_indexes
from .shop.optimized import bp as optimized
from .topics.loadtest import POOL_LINE
from .topics.pooling import pool_settings

__all__ = ["VIEWS", "build_app", "default_engine_options", "main"]

VIEWS = ("optimized", "baseline", "mine")


def _views(kind: str) -> Blueprint | list[Blueprint]:
    if ":" in kind:
        return _imported_views(kind)
    if kind == "baseline":
        return bp
    if kind == "mine":
        return assemble(baseline)[0]  # your endpoints, and the baseline's for those you have not rewritten

    return optimized


def _imported_views(spec: str) -> Blueprint:
    """The Blueprint named by 'package.module:attribute'."""

    module_name, _, attribute = spec.partition(":")
    try:
        views = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise CourseError(f"Cannot import views {spec!r} ({exc}): write them as module:blueprint.") from None
    if not isinstance(views, Blueprint):
        raise CourseError(f"{spec!r} is a {type(views).__name__}, not a Flask Blueprint.")
    return views


def default_engine_options(views: str) -> dict[str, Any]:
    """The pool each app runs with unless told otherwise: the course's for the finished app, the learner's saved
    one for theirs, SQLAlchemy's default for the rest."""
    if views == "optimized":
        return dict(ENGINE_OPTIONS)
    if views == "mine":
        return my_engine_options()
    return {}


def build_app(
    views: str = "optimized", *, database_url: str | None = None, engine_options: Mapping[str, Any] | None = None
) -> Flask:
    """The app to serve: the optimized views on an indexed copy of the dataset, unless told otherwise.

    `engine_options` None: the app's own pool (`default_engine_options`)."""

    if views not in VIEWS and ":" not in views:
        raise CourseError(f"Unknown views {views!r}: choose one of {', '.join(VIEWS)} or module:blueprint.")
    s = settings()
    options = default_engine_options(views) if engine_options is None else dict(engine_options)
    config: dict[str, Any] = {**cache_config(s), "ENGINE_OPTIONS": options}
    if prefix := os.environ.get("COURSE_CACHE_KEY_PREFIX"):
        config["CACHE_KEY_PREFIX"] = prefix
    if database_url:
        url = parse_url(database_url, source="--database-url")
        check_reachable(url, must_exist=True)  # served as it is: nothing will build it
        return create_app({"DATABASE_URL": url, **config}, views=_views(views))
    url = course_url(s)
    check_reachable(url)
    ensure_dataset(s.size, url=url)
    if views == "baseline":
        return create_app({"DATABASE_URL": url, **config}, views=_views(views))

    copy = copy_dataset(s.size, "app", source=url)
    engine = make_engine(copy)
    create_indexes(engine)
    engine.dispose()
    return create_app({"DATABASE_URL": copy, **config}, views=_views(views))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--views", default="optimized", help=f"one of {', '.join(VIEWS)} or package.module:name")
    parser.add_argument("--database-url", default=None, help="serve this database as it is")
    parser.add_argument(
        "--engine-options",
        default=None,
        help='create_engine options as JSON: {"pool_size": 10} (default: the app\'s)',
    )
    args = parser.parse_args(argv)
    try:
        try:
            options = None if args.engine_options is None else json.loads(args.engine_options)
        except ValueError:
            raise CourseError(f"--engine-options is not JSON: {args.engine_options!r}") from None
        app = build_app(args.views, database_url=args.database_url, engine_options=options)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = f"http://{args.host}:{args.port}/"
    engine = app.extensions["engine"]
    print(f"Serving the {args.views} shop on {url} ({engine.url.render_as_string(hide_password=True)})")
    print(POOL_LINE + json.dumps(pool_settings(engine)))
    if args.views == "mine" and not saved_files():
        print("You have not saved an endpoint yet: your app is the baseline's views until a check keeps one.")
    print(f"Open {url} for every endpoint with an example link; Ctrl-C stops the server.", flush=True)
    try:
        serve(app, host=args.host, port=args.port, threads=args.threads, ident="shop")
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{args.port} ({exc.strerror}): stop what uses it, "
            "or pick another port with `make app PORT=5001`.",
            file=sys.stderr,
        )
        return 2
    return 0
