"""`make app`: serve the finished, optimized shop on http://127.0.0.1:5000 with waitress.

The optimized views need the indexes lesson 04 teaches, so the app runs on its own copy of the dataset
(`shop-<size>.app.sqlite`, or the `shop_<size>__app` database) with those indexes, never on the lessons' data.
`--views baseline` serves the naive app, `--views mine` the endpoints you wrote in the lessons (saved under
data/my_app/), `--views package.module:blueprint` any importable Blueprint (lesson 06 serves its demo views so);
`--database-url` serves a given database as it is, with no copy and no indexes added.
"""

from __future__ import annotations

import argparse
import importlib
import json
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
from .exercises.saved_views import assemble, saved_files
from .shop.app import create_app
from .shop.baseline import bp
from .shop.baseline import bp as baseline
from .shop.optimized import bp as optimized
from .shop.optimized import create_indexes

__all__ = ["VIEWS", "build_app", "main"]

VIEWS = ("optimized", "baseline", "mine")


def _views(kind: str) -> Blueprint | list[Blueprint]:
    if ":" in kind:
        return _imported_views(kind)
    if kind == "baseline":
        return bp
    if kind == "mine":
        if not saved_files():
            raise CourseError(
                "You have not saved any endpoint yet: pass an improve-the-app check in a lesson (02 to 09) first."
            )
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


def build_app(
    views: str = "optimized", *, database_url: str | None = None, engine_options: Mapping[str, Any] | None = None
) -> Flask:
    """The app to serve: the optimized views on an indexed copy of the dataset, unless told otherwise."""

    if views not in VIEWS and ":" not in views:
        raise CourseError(f"Unknown views {views!r}: choose one of {', '.join(VIEWS)} or module:blueprint.")
    s = settings()
    config: dict[str, Any] = {**cache_config(s), "ENGINE_OPTIONS": dict(engine_options or {})}
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
    parser.add_argument("--engine-options", default="{}", help='create_engine options as JSON: {"pool_size": 10}')
    args = parser.parse_args(argv)
    try:
        try:
            options = json.loads(args.engine_options)
        except ValueError:
            raise CourseError(f"--engine-options is not JSON: {args.engine_options!r}") from None
        app = build_app(args.views, database_url=args.database_url, engine_options=options)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = f"http://{args.host}:{args.port}/"
    engine = app.extensions["engine"]
    print(f"Serving the {args.views} shop on {url} ({engine.url.render_as_string(hide_password=True)})")
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
