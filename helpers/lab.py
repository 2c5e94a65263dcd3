"""Start JupyterLab on the course notebooks (what `make lab` runs after setting up), configured for the course.

    python -m helpers lab [--size small] [JupyterLab options]

Before JupyterLab starts, the course checks what the lessons will need (settings, database, dataset,
cache) exactly as a lesson's setup cell does, so a problem is one line here rather than in every notebook.
The course's JupyterLab settings live in this environment only (`<sys.prefix>/share/jupyter/lab/settings/
overrides.json`), never in the learner's own settings: a course about timing shows every cell's run time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import PROJECT_ROOT
from .course import setup
from .errors import CourseError
from .servers import stop_postgres, stop_redis

__all__ = ["check_ready", "lab_command", "main", "settings_path", "write_settings"]

# Settings a course about timing wants, as JupyterLab's overrides.json (plugin id -> settings).
_COURSE_SETTINGS: dict[str, dict[str, Any]] = {
    # Show how long each cell ran, beside the cell (jupyterlab-execute-time reads the timing JupyterLab
    # records in the cell's metadata, so recording must be on).
    "@jupyterlab/notebook-extension:tracker": {"recordTiming": True},
    "jupyterlab-execute-time:settings": {
        "enabled": True,
        "highlight": True,
        "positioning": "left",
        "minTime": 0,
        "showLiveExecutionTime": True,
        "showDate": False,
        "historyCount": 5,
    },
    # No "get notified about official Jupyter news?" popup, no requests to the news feed or update check.
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def settings_path(prefix: str | Path | None = None) -> Path:
    """This environment's JupyterLab overrides.json (under sys.prefix, not the user's home)."""
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def write_settings(prefix: str | Path | None = None) -> Path:
    """Merge the course's settings into this environment's overrides.json (other entries are kept)."""
    path = settings_path(prefix)
    try:
        current: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        current = {}  # a broken file helps nobody: ours replaces it
    merged = {**current, **{plugin: {**current.get(plugin, {}), **s} for plugin, s in _COURSE_SETTINGS.items()}}
    if merged != current or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def lab_command(argv: Sequence[str] | None = None) -> list[str]:
    """The jupyter-lab command line: notebooks/ as root folder, root allowed, extra args from LAB_ARGS.

    LAB_ARGS may name another root folder (`--ServerApp.root_dir=...`, as the browser test does).
    """
    extra = shlex.split(os.environ.get("LAB_ARGS", "")) + list(argv or [])
    command = [sys.executable, "-m", "jupyterlab"]
    if not any(arg.startswith(("--ServerApp.root_dir", "--notebook-dir")) for arg in extra):
        command.append(f"--ServerApp.root_dir={PROJECT_ROOT / 'notebooks'}")
    command += ["--ServerApp.ip=127.0.0.1", "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI machines often run as root
    return command + extra


def check_ready(size: str | None = None) -> str:
    """Run a lesson's setup (settings, database, dataset built if missing, cache); say what is ready."""

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
    write_settings()
    command = lab_command(jupyter_args)
    print("Starting JupyterLab on notebooks/ — open the http://127.0.0.1:… URL printed below; Ctrl-C stops it.")
    sys.stdout.flush()
    if sys.platform == "win32":
        # Windows has no exec (os.execv starts a new process and ends this one, and the console loses it): wait
        # for JupyterLab instead. Ctrl-C reaches both; JupyterLab answers it (it asks, then stops), we wait on.
        with subprocess.Popen(command) as lab:
            while True:
                with contextlib.suppress(KeyboardInterrupt):
                    return lab.wait()
    os.execv(command[0], command)
    return 0  # not reached: execv replaces this process
