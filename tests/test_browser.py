"""Every lesson in a real browser: JupyterLab started by the course's own `python -m helpers lab`, each notebook
opened in headless Chromium and run with Run ▸ Run All Cells at `tiny`, then checked as a learner would see it:
every cell ran, no error under any cell, the charts are there, and the widgets render and respond.

Needs Debian's `chromium` and the `playwright` package (its own browser downloads are never used). Without
them the test is skipped with the reason; under CI=true it fails instead. A screenshot of each notebook
after Run All goes to data/screenshots/ for people to look at; when a check fails, a screenshot of the page
at that moment is saved under pytest's tmp dir and its path is printed with the failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from helpers.config import data_dir
from helpers.data import ensure_dataset

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
RUN_ALL_TIMEOUT_S = 240  # a whole lesson at tiny runs in seconds; a stuck kernel must fail, not stall
WIDGET_TIMEOUT_S = 120
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
SCROLLER = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"  # the notebook's scrolling box
ERROR_TEXT = re.compile(r"Traceback|Error|Warning")

pytestmark = pytest.mark.browser


def _why_no_browser() -> str | None:
    """Why the browser test cannot run here (one line), or None."""
    if shutil.which("chromium") is None:
        return "no Chromium for the browser test (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright for the browser test (make test installs it, from requirements/test.txt)"
    return None


NO_BROWSER = _why_no_browser()
if NO_BROWSER is not None and os.environ.get("CI") != "true":
    pytest.skip(NO_BROWSER, allow_module_level=True)


def _chromium() -> str:
    """The path of Debian's chromium; under CI=true a missing browser fails every test of this module."""
    if NO_BROWSER is not None:
        pytest.fail(f"{NO_BROWSER}: CI must run the browser test")
    return str(shutil.which("chromium"))


# ---------------------------------------------------------------------------------------------------- fixtures


class Lab:
    """A running JupyterLab: its base URL and token, and a way to shut down every kernel it started."""

    def __init__(self, base: str, token: str, root: Path) -> None:
        self.base, self.token, self.root = base, token, root

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API (`path` below the base URL, e.g. 'api/sessions'); the JSON it answers."""
        request = urllib.request.Request(
            f"{self.base}/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for session in self.api("api/sessions"):
            self.api(f"api/sessions/{session['id']}", method="DELETE")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab as `make lab` starts it, on copies of the lessons (it saves what it runs: not the originals)."""
    _chromium()
    ensure_dataset("tiny", progress=False)
    home = tmp_path_factory.mktemp("lab")
    root = home / "notebooks"
    root.mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, root / path.name)
    port, token = _free_port(), secrets.token_hex(16)
    lab_args = [
        f"--ServerApp.port={port}",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        # The learner's own JupyterLab settings and workspaces are neither read nor written.
        f"--LabApp.user_settings_dir={home / 'user-settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]
    env = {
        **os.environ,
        "LAB_ARGS": " ".join(lab_args),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "COURSE_SIZE": "tiny",
        "COURSE_BACKEND": "sqlite",
        "COURSE_CACHE": "simple",
        "COURSE_ONCALL_APPLY_REFERENCE": "1",  # the on-call lesson in its test mode, as the notebook runner
    }
    log_path = home / "lab.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "helpers", "lab"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            running = Lab(f"http://127.0.0.1:{port}", token, root)
            deadline = time.monotonic() + 90
            while True:
                try:
                    running.api("api/status")
                    break
                except OSError:
                    assert proc.poll() is None, f"JupyterLab exited:\n{log_path.read_text()}"
                    assert time.monotonic() < deadline, (
                        f"JupyterLab did not answer in 90 s:\n{log_path.read_text()}"
                    )
                    time.sleep(0.5)
            yield running
        finally:
            proc.terminate()  # the server shuts its kernels down as it exits
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (Debian's, with a fresh profile) for every page of the module."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    for old in _screenshots_dir().glob("*.png"):  # this run's pictures only
        old.unlink()

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,  # type: ignore[arg-type]
        )
        try:
            yield context
        finally:
            context.close()


# ---------------------------------------------------------------------------------------------------- helpers


def _screenshots_dir() -> Path:
    """data/screenshots/ (git-ignored): what each lesson looked like in the last browser test, for people."""
    folder = data_dir() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _scroll_into_view(page: Any, selector: str) -> None:
    page.evaluate("s => document.querySelector(s)?.scrollIntoView({block: 'center'})", selector)


def _notebook_screenshot(page: Any, path: Path) -> None:
    """The whole notebook in one picture: make the window as tall as the notebook, then shoot."""
    height = page.evaluate("s => document.querySelector(s)?.scrollHeight ?? 0", SCROLLER)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": int(min(max(height + 200, 1000), 14000))})
    page.wait_for_timeout(400)  # let JupyterLab lay the cells out for the new size
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)


KERNEL_IDLE = "() => document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle'"
ALL_DONE = """() => {
  const idle = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle';
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent);
  return idle && prompts.length > 0 && !prompts.some(t => t.includes('*'));
}"""
# What a widget container shows: its text and its pictures (a redrawn chart has new bytes).
SIGNATURE = (
    "e => e.textContent + '|' + [...e.querySelectorAll('img')].map(i => i.src.length + i.src.slice(-80)).join()"
)


def _wait_for_change(page: Any, container: Any, before: str, what: str) -> str:
    """Wait until the kernel is idle and `container` shows something new; return what it shows."""
    deadline = time.monotonic() + WIDGET_TIMEOUT_S
    while time.monotonic() < deadline:
        page.wait_for_timeout(300)
        if not page.evaluate(KERNEL_IDLE):
            continue
        after = str(container.evaluate(SIGNATURE))
        disabled = container.locator("button:disabled").count()
        if after != before and after.strip("|") and not disabled:
            return after
    raise AssertionError(f"{what}: the widget's output did not change within {WIDGET_TIMEOUT_S} s")


def _first_in_view(page: Any, selector: str) -> Any | None:
    """The first element `selector` finds, scrolled into view; None when the lesson shows none."""
    found = page.locator(selector)
    if not found.count():
        return None
    first = found.first
    first.scroll_into_view_if_needed()
    return first


def _try_widgets(page: Any, stem: str, shots: Path) -> list[str]:
    """Use the lesson's widgets as an instructor would; return what was exercised."""
    done: list[str] = []

    # The dataset picker (00): choose another size, press its button if it has one, see the output change.
    box = _first_in_view(
        page,
        ".jp-OutputArea-output > .widget-vbox:has(select:has(option:text-is('tiny'))"
        ":has(option:text-is('small'))):has(.widget-output)",
    )
    if box is not None:
        select = box.locator("select:has(option:text-is('small'))").first
        target = "small" if select.evaluate("s => s.options[s.selectedIndex]?.text") != "small" else "tiny"
        before = str(box.evaluate(SIGNATURE))
        select.select_option(label=target)
        buttons = box.locator("button.mod-primary, button:text-matches('build|use|switch|check|apply', 'i')")
        if buttons.count():
            buttons.first.click()
        shown = _wait_for_change(page, box, before, f"dataset picker set to {target}")
        assert target in shown, f"dataset picker set to {target}, but its output says: {shown[:300]}"
        box.screenshot(path=str(shots / f"{stem}.picker.png"))
        done.append(f"picker→{target}")

    # A rerun button (every lesson's main comparison from 02 on): press it, see the table and chart redrawn.
    box = _first_in_view(
        page,
        ".widget-vbox:has(> .widget-button):has(> .widget-output)"
        ":has(> .widget-button:text-matches('again|rerun|re-run', 'i'), > .widget-button .fa-refresh)",
    )
    if box is not None:
        before = str(box.evaluate(SIGNATURE))
        box.locator("> .widget-button").first.click()
        _wait_for_change(page, box, before, "rerun button")
        box.screenshot(path=str(shots / f"{stem}.rerun.png"))
        done.append("rerun button")

    # A slider that reruns a measurement (03): move it one step, see the readout and the chart change.
    box = _first_in_view(page, ".widget-vbox:has(> .widget-slider .noUi-handle):has(> .widget-output)")
    if box is not None:
        handle = box.locator(".noUi-handle").first
        readout = box.locator(".widget-readout").first
        old_value = readout.text_content()
        before = str(box.evaluate(SIGNATURE))
        at_min = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemin")
        handle.focus()
        handle.press("ArrowRight" if at_min else "ArrowLeft")
        _wait_for_change(page, box, before, "slider")
        assert readout.text_content() != old_value, "the slider did not move"
        box.screenshot(path=str(shots / f"{stem}.slider.png"))
        done.append(f"slider {old_value}→{readout.text_content()}")

    # The query panel (09): EXPLAIN the selected statement, see the plan appear.
    panel = _first_in_view(page, ".course-query-panel:has(.course-explain-button)")
    if panel is not None:
        before = str(panel.evaluate(SIGNATURE))
        button = panel.locator(".course-explain-button").first
        (button.locator("button").first if button.locator("button").count() else button).click()
        _wait_for_change(page, panel, before, "query panel EXPLAIN")
        panel.screenshot(path=str(shots / f"{stem}.explain.png"))
        done.append("EXPLAIN")
    return done


def _problems(page: Any, path: Path) -> list[str]:
    """What a learner would see go wrong after Run All."""
    nb = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    problems = []
    prompts = [str(p).strip() for p in page.locator(".jp-CodeCell .jp-InputArea-prompt").all_text_contents()]
    if len(prompts) != len(code_cells):
        problems.append(f"{len(prompts)} code cells on the page, {len(code_cells)} in the notebook")
    not_run = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
    if not_run:
        problems.append(f"code cells not executed (prompt [ ]:): numbers {not_run} of {len(prompts)}")
    for text in page.locator(STDERR).all_text_contents():
        if ERROR_TEXT.search(text):
            problems.append(f"error output: {text.strip()[:400]}")
    for text in page.locator(".jp-OutputArea-output").all_text_contents():
        if "Error displaying widget" in text or "Error rendering" in text:
            problems.append(f"a widget did not render: {text.strip()[:200]}")
    source = "\n".join(cell.source for cell in code_cells)
    if any(call in source for call in ("show_figure(", ".show()", "plt.")):
        images = page.locator(".jp-OutputArea-output img").evaluate_all(
            "imgs => imgs.map(i => i.complete && i.naturalWidth)"
        )
        if not images:
            problems.append("no chart (no image output) although the lesson draws some")
        elif not all(images):
            problems.append(f"{images.count(0)} chart(s) did not load")
    uses_widgets = any(
        name in source for name in ("helpers.measure.widgets", "ipywidgets", "helpers.instructor", "load_controls")
    )
    if uses_widgets and not page.locator(".jp-OutputArea-output .jupyter-widgets").count():
        problems.append("the lesson displays widgets, but none rendered")
    if code_cells and not page.locator(".jp-CodeCell .execute-time").count():
        problems.append("no cell run time shown (jupyterlab-execute-time and the course's lab settings)")
    if "official Jupyter news" in page.locator("body").text_content() or "":
        problems.append("the 'official Jupyter news' popup is shown")
    return problems


def _first_problem_selector(page: Any) -> str:
    return str(
        page.evaluate(
            """stderr => {
  const err = [...document.querySelectorAll(stderr)]
    .find(e => /Traceback|Error|Warning/.test(e.textContent));
  if (err) { err.id = 'course-first-problem'; return '#course-first-problem'; }
  const cell = [...document.querySelectorAll('.jp-CodeCell')]
    .find(c => !/\\[\\d+\\]/.test(c.querySelector('.jp-InputArea-prompt')?.textContent ?? ''));
  if (cell) { cell.id = 'course-first-problem'; return '#course-first-problem'; }
  return '';
}""",
            STDERR,
        )
    )


def _on_failure(page: Any, tmp_path: Path, stem: str, run: Callable[[], list[str]]) -> list[str]:
    """Run the checks; on any failure save a screenshot of the page where it went wrong and say where."""
    try:
        return run()
    except Exception as exc:
        shot = tmp_path / f"{stem}.failure.png"
        try:
            selector = _first_problem_selector(page)
            if selector:
                _scroll_into_view(page, selector)
            page.screenshot(path=str(shot))
            where = f"screenshot: {shot}"
        except Exception as shot_error:  # the page may be gone; the failure itself matters more
            where = f"(no screenshot: {shot_error})"
        print(f"{stem}: {where}")
        raise AssertionError(f"{stem}: {exc}\n{where}") from exc


# ---------------------------------------------------------------------------------------------------- tests


def test_the_course_settings_are_in_effect(lab: Lab) -> None:
    """JupyterLab serves the course's overrides.json as its defaults: run times shown, no news popup."""

    def defaults(plugin: str) -> dict[str, Any]:
        schema = lab.api(f"lab/api/settings/{plugin}")["schema"]
        return {name: spec.get("default") for name, spec in schema["properties"].items()}

    assert defaults("@jupyterlab/notebook-extension:tracker")["recordTiming"] is True
    assert defaults("jupyterlab-execute-time:settings")["enabled"] is True
    assert defaults("@jupyterlab/apputils-extension:notification")["fetchNews"] == "false"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_runs_all_in_jupyterlab(path: Path, lab: Lab, browser: Any, tmp_path: Path) -> None:
    shots = _screenshots_dir()
    page = browser.new_page()
    started = time.monotonic()
    timings: dict[str, float] = {}

    def run() -> list[str]:
        page.goto(lab.url(f"lab/tree/{path.name}") + "&reset")  # reset: a fresh workspace, this notebook only
        page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=90_000)
        timings["open"] = time.monotonic() - started
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()  # room for the cells
        _run_all(page)
        timings["run all"] = time.monotonic() - started - timings["open"]
        mark = time.monotonic()
        problems = _problems(page, path)
        assert not problems, "after Run All:\n  " + "\n  ".join(problems)
        timings["checks"] = time.monotonic() - mark
        page.evaluate("s => document.querySelector(s)?.scrollTo(0, 0)", SCROLLER)
        mark = time.monotonic()
        page.screenshot(path=str(shots / f"{path.stem}.png"))
        _notebook_screenshot(page, shots / f"{path.stem}.full.png")
        timings["screenshots"] = time.monotonic() - mark
        mark = time.monotonic()
        done = _try_widgets(page, path.stem, shots)
        timings["widgets"] = time.monotonic() - mark
        problems = _problems(page, path)
        assert not problems, "after using the widgets:\n  " + "\n  ".join(problems)
        return done

    try:
        done = _on_failure(page, tmp_path, path.stem, run)
    finally:
        page.close()
        lab.shutdown_kernels()
    spent = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    print(f"{path.stem}: {spent}; widgets used: {', '.join(done) or 'none'}; screenshots in {shots}")


def _run_all(page: Any) -> None:
    """Run ▸ Run All Cells, through the menu as a learner would, and wait until every cell has run."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    page.wait_for_function(  # started: a cell queued or running, or already every cell numbered
        "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
        ".map(e => e.textContent);"
        " return p.some(t => t.includes('*')) || (p.length > 0 && p.every(t => /\\d/.test(t))) }",
        timeout=30_000,
    )
    page.wait_for_function(ALL_DONE, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=500)
    page.wait_for_timeout(500)  # the last outputs and widget views settle


def test_instructor_panel_in_jupyterlab(lab: Lab, browser: Any, tmp_path: Path) -> None:
    """The panel an instructor adds to a lesson: clear this lesson's history (two clicks), switch size."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from helpers.course import setup\nfrom helpers.instructor import instructor_panel\n\n"
            'course = setup("00")'
        ),
        nbformat.v4.new_code_cell("instructor_panel(course)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    scratch = lab.root / "instructor_panel.ipynb"
    nbformat.write(nb, scratch)
    page = browser.new_page()

    def run() -> list[str]:
        page.goto(lab.url(f"lab/tree/{scratch.name}") + "&reset")
        page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=90_000)
        _run_all(page)
        assert not _problems(page, scratch)
        panel = page.locator(".course-instructor-panel").first
        clear = panel.locator("button", has_text="Clear stored history").first
        before = str(panel.evaluate(SIGNATURE))
        clear.click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.course-instructor-panel button')]"
            ".some(b => b.textContent.includes('Click again'))",
            timeout=30_000,
        )
        panel.locator("button", has_text="Click again").first.click()
        shown = _wait_for_change(page, panel, before, "clear history")
        assert "stored measurements of lesson 00" in shown, shown[:300]
        before = shown
        panel.locator("button", has_text="Switch").first.click()
        shown = _wait_for_change(page, panel, before, "switch")
        assert "Switched to size tiny on sqlite" in shown, shown[:300]
        panel.screenshot(path=str(_screenshots_dir() / "instructor_panel.png"))
        return []

    try:
        _on_failure(page, tmp_path, "instructor_panel", run)
    finally:
        page.close()
        lab.shutdown_kernels()


def test_site_pages_open_with_their_charts(browser: Any, tmp_path: Path) -> None:
    """`make site` at tiny for two lessons: each page opens offline, shows its charts, links to the others."""
    from tools.site import build_site

    paths = [ROOT / "notebooks" / name for name in ("00_start_here.ipynb", "03_joins_and_n_plus_one.ipynb")]
    paths = [p for p in paths if p.exists()]
    pages = build_site(paths, tmp_path / "site", size="tiny")
    assert [p.error for p in pages] == [None] * len(paths)
    page = browser.new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    try:
        for built in pages:
            page.goto((tmp_path / "site" / built.html_name).as_uri())
            images = page.locator("img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth)")
            assert images and all(images), f"{built.html_name}: charts {images}"
            assert page.locator("a[href='index.html']").count()
            assert not page.locator("a[href$='.ipynb']").count(), f"{built.html_name} links to a notebook"
            page.screenshot(path=str(_screenshots_dir() / f"site.{Path(built.html_name).stem}.png"))
        page.locator("a[href='index.html']").first.click()
        page.wait_for_load_state()
        assert page.url.endswith("/index.html")
        assert page.locator("a[href='00_start_here.html']").count()
        page.screenshot(path=str(_screenshots_dir() / "site.index.png"))
    finally:
        page.close()
    assert not outside, f"the pages asked the network for {outside[:3]}"
