"""Start JupyterLab on the course notebooks (what `make lab` runs after setting up).

    python -m helpers lab [--size small] [JupyterLab options]

Before JupyterLab starts, the course checks what the lessons will need (settings, database, dataset,
cache) exactly as a lesson's setup cell does, so a problem is one line here rather than in every notebook.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from .config import PROJECT_ROOT
from .errors import CourseError


def lab_command(argv: Sequence[str] | None = None) -> list[str]:
    """The jupyter-lab command line: notebooks/ as root folder, root allowed, extra args from LAB_ARGS."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={PROJECT_ROOT / 'notebooks'}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.open_browser=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines often run as root
    command += shlex.split(os.environ.get("LAB_ARGS", ""))
    return command + list(argv or [])


def check_ready(size: str | None = None) -> str:
    """Run a lesson's setup (settings, database, dataset built if missing, cache); say what is ready."""
    from .course import setup
    from .servers import stop_postgres, stop_redis

    course = setup("lab", size=size, quiet=True)
    course.engine.dispose()
    # The lessons' kernels start (or share) the servers themselves. This process is about to become
    # JupyterLab through exec, after which nothing would ever stop the servers it started.
    stop_postgres()
    stop_redis()
    return (
        f"Ready: the {course.size} dataset ({course.info.total_rows:,} rows) on {course.backend}, "
        f"cache {course.settings.cache}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers lab", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default=None, help="the dataset to check, or build (default: COURSE_SIZE)")
    args, jupyter_args = parser.parse_known_args(argv)
    if args.size:
        os.environ["COURSE_SIZE"] = args.size  # for the lessons' kernels too
    try:
        print(check_ready(args.size))
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = lab_command(jupyter_args)
    print("Starting JupyterLab on notebooks/ — open the http://127.0.0.1:… URL printed below; Ctrl-C stops it.")
    sys.stdout.flush()
    os.execv(command[0], command)
    return 0  # not reached: execv replaces this process
