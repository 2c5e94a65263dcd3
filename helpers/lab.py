"""Start JupyterLab on the course notebooks (what `make lab` runs after setting up)."""

from __future__ import annotations

import os
import shlex
import sys

from .config import PROJECT_ROOT


def lab_command(argv: list[str] | None = None) -> list[str]:
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


def main(argv: list[str] | None = None) -> None:
    command = lab_command(argv)
    print("Starting JupyterLab on notebooks/ — open the http://127.0.0.1:… URL printed below; Ctrl-C stops it.")
    sys.stdout.flush()
    os.execv(command[0], command)
