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

import pytest

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


def test_course_settings_go_to_this_environment_and_keep_other_entries(tmp_path: Path) -> None:
    from helpers.lab import settings_path, write_settings

    path = settings_path(tmp_path)
    assert path == tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    write_settings(tmp_path)
    written = json.loads(path.read_text())
    assert written["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert written["@jupyterlab/notebook-extension:tracker"]["recordTiming"] is True
    assert written["jupyterlab-execute-time:settings"]["enabled"] is True
    assert written["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    write_settings(tmp_path)
    assert json.loads(path.read_text()) == written


def test_lab_args_may_name_another_root_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAB_ARGS", f"--ServerApp.root_dir={tmp_path}")
    command = lab_command()
    assert [arg for arg in command if "root_dir" in arg] == [f"--ServerApp.root_dir={tmp_path}"]
