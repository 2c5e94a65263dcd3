"""`make app`: serve the finished, optimized shop on http://127.0.0.1:5000 with waitress.

The optimized views need the indexes lesson 04 teaches, so the app runs on its own copy of the dataset
(`shop-<size>.app.sqlite`, or the `shop_<size>__app` database) with those indexes, never on the lessons' data.
`--baseline` serves the naive app on the shared dataset instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flask import Flask

from ..errors import CourseError


def build_app(baseline: bool = False) -> Flask:
    """The optimized app on an indexed copy of the dataset, or the baseline app on the dataset itself."""
    from ..config import settings
    from ..data import copy_dataset, ensure_dataset
    from ..db import check_reachable, course_url, make_engine
    from .app import create_app
    from .caching import cache_config

    s = settings()
    url = course_url(s)
    check_reachable(url)
    ensure_dataset(s.size, url=url)
    config = cache_config(s)
    if baseline:
        return create_app({"DATABASE_URL": url, **config})
    from .optimized import bp, create_indexes

    copy = copy_dataset(s.size, "app", source=url)
    engine = make_engine(copy)
    create_indexes(engine)
    engine.dispose()
    return create_app({"DATABASE_URL": copy, **config}, views=bp)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--baseline", action="store_true", help="serve the naive endpoints instead")
    args = parser.parse_args(argv)
    try:
        from waitress import serve

        app = build_app(args.baseline)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = f"http://{args.host}:{args.port}/"
    engine = app.extensions["engine"]
    kind = "baseline" if args.baseline else "optimized"
    print(f"Serving the {kind} shop on {url} ({engine.url.render_as_string(hide_password=True)})")
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
