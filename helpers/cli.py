"""The course's command line, what the Makefile runs.

    python -m helpers data build|ensure|info [--size small] [--force]
    python -m helpers bench [--size small] [--only ...]
    python -m helpers app [--views optimized|baseline|mine] [--port 5000]
    python -m helpers lab [--size small] [JupyterLab options]
    python -m helpers servers clean

A problem the learner can fix is one line on stderr that says what to do, and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import CourseError

USAGE = "usage: python -m helpers {data,bench,app,lab,servers} ..."


def _servers(argv: list[str]) -> int:
    if argv != ["clean"]:
        print("usage: python -m helpers servers clean", file=sys.stderr)
        return 2
    from .servers import remove_servers

    print(remove_servers())
    return 0


def _command(name: str) -> Callable[[list[str]], int] | None:
    """The main function of a subcommand, imported only when it runs (each pulls in different libraries)."""
    if name == "data":
        from .data import main as data_main

        return data_main
    if name == "bench":
        from .bench import main as bench_main

        return bench_main
    if name == "app":
        from .serving import main as serve_main

        return serve_main
    if name == "lab":
        from .lab import main as lab_main

        return lab_main
    if name == "servers":
        return _servers
    return None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name, rest = (args[0], args[1:]) if args else ("help", [])
    command = _command(name)
    if command is None:
        print(USAGE, file=sys.stderr)
        return 0 if name in ("help", "-h", "--help") else 2
    try:
        return command(rest)
    except CourseError as exc:  # the subcommands catch their own; this is the net under them
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
