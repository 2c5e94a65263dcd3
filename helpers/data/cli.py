"""`python -m helpers data build|ensure|info [--size small] [--force]`: what `make data` and `make reset` run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..config import SIZES, settings, size_spec
from ..db import check_reachable, course_url
from ..errors import CourseError
from .build import build_dataset
from .info import exists, read_info

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers data", description="Build, ensure or describe a course dataset."
    )
    parser.add_argument("command", choices=("build", "ensure", "info"))
    parser.add_argument("--size", default=None, help=f"one of {', '.join(SIZES)} (default: COURSE_SIZE or small)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the dataset exists")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            spec = size_spec(args.size)
            url = course_url(settings(size=spec.name))
            check_reachable(url)
            if not exists(url):
                shown = url.render_as_string(hide_password=True)
                raise CourseError(f"There is no dataset at {shown}: build it with `make data SIZE={spec.name}`.")
            info = read_info(url, size=spec.name)
        else:  # build and ensure differ only in --force: build never replaces a good dataset without it
            info = build_dataset(args.size, force=args.force)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{info.size} dataset at {info.url}: {info.total_rows:,} rows "
        f"(built {info.built_at} in {info.build_seconds:.1f} s)"
    )
    return 0
