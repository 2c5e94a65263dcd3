"""`make app`: serve the shop on http://127.0.0.1:5000 with waitress (a real multi-threaded WSGI server)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import CourseError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers app", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    try:
        from waitress import serve

        from .app import create_app

        app = create_app()
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = f"http://{args.host}:{args.port}/"
    print(f"Serving the shop on {url} ({app.extensions['engine'].url.render_as_string(hide_password=True)})")
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
