"""The course's command line: `python -m helpers data build --size small`, `... bench`, `... lab`, `... app`."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command, rest = (args[0], args[1:]) if args else ("help", [])
    if command == "data":
        from .data import main as data_main

        return data_main(rest)
    if command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if command == "lab":
        from .lab import main as lab_main

        lab_main(rest)
        return 0
    if command == "app":
        from .shop.serve import main as serve_main

        return serve_main(rest)
    print("usage: python -m helpers {data,bench,lab,app} ...", file=sys.stderr)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
