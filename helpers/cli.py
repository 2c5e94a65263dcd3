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
from importlib import import_module

from .errors import CourseError
from .servers import remove_servers

__all__ = ["COMMANDS", "USAGE", "main", "servers_main"]

USAGE = "usage: python -m helpers {data,bench,app,lab,servers} ..."


# Each subcommand's main function, imported only when it runs: each pulls in different libraries (the dataset
# builder, the bench, waitress, JupyterLab), and `python -m helpers data` should not wait for JupyterLab.
COMMANDS = {
    "data": "helpers.data.cli:main",
    "bench": "helpers.bench:main",
    "app": "helpers.serving:main",
    "lab": "helpers.lab:main",
    "servers": "helpers.cli:servers_main",
}


def servers_main(argv: list[str]) -> int:
    """`python -m helpers servers clean`: stop the course's servers if left running, remove their files."""
    if argv != ["clean"]:
        print("usage: python -m helpers servers clean", file=sys.stderr)
        return 2
    print(remove_servers())
    return 0


def _command(name: str) -> Callable[[list[str]], int] | None:
    """The main function of a subcommand (None for an unknown name)."""
    if name not in COMMANDS:
        return None
    module, _, function = COMMANDS[name].partition(":")
    command: Callable[[list[str]], int] = getattr(import_module(module), function)
    return command


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
