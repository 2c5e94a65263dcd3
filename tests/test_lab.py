"""`make lab` starts JupyterLab on notebooks/ (as root too) and it serves the course."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from helpers.lab import lab_command

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_command_serves_notebooks_folder_on_loopback() -> None:
    command = lab_command()
    assert f"--ServerApp.root_dir={ROOT / 'notebooks'}" in command
    assert "--ServerApp.ip=127.0.0.1" in command
    assert ("--allow-root" in command) == (os.geteuid() == 0)


def test_jupyterlab_starts_and_lists_the_lessons(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LAB_ARGS": f"--ServerApp.port={port} --ServerApp.token=course-test",
        "COURSE_SIZE": "tiny",  # checked (and built if missing) before JupyterLab starts
        "JUPYTER_RUNTIME_DIR": str(tmp_path),
    }
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers", "lab"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}/api/contents?token=course-test"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    listing = json.load(response)
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "lab.log").read_text()
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.5)
        names = {item["name"] for item in listing["content"]}
        assert {"00_start_here.ipynb", "01_baseline_app.ipynb"} <= names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token=course-test", timeout=5) as response:
            assert response.status == 200 and b"JupyterLab" in response.read()
        printed = (tmp_path / "lab.log").read_text()
        assert f"http://127.0.0.1:{port}/lab" in printed  # the URL a learner opens
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
