"""`make site`: lessons rendered to linked, offline HTML pages, widgets shown as what they displayed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from helpers.lessons import LESSONS
from tools import site

ROOT = Path(__file__).resolve().parent.parent


def _widget_notebook() -> nbformat.NotebookNode:
    """A notebook as nbclient leaves it: a VBox(slider, output) whose output holds a chart and a line."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "[← 01 x](01_baseline_app.ipynb) · [Contents](00_start_here.ipynb)\n# 02 · T"
        ),
        nbformat.v4.new_code_cell("slider_rerun(...)"),
    ]
    nb.cells[1].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "VBox(...)", site.WIDGET_VIEW: {"model_id": "box", "version_major": 2}},
        )
    ]
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    models: dict[str, Any] = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out"]}},
        "slider": {
            "model_name": "SelectionSliderModel",
            "state": {"description": "largest N", "_options_labels": ["100", "500", "1000"], "index": 2},
        },
        "out": {
            "model_name": "OutputModel",
            "state": {
                "outputs": [
                    {
                        "output_type": "display_data",
                        "data": {"image/png": png, "text/plain": "<Figure>"},
                        "metadata": {},
                    },
                    {"output_type": "stream", "name": "stdout", "text": "At N=1000: 1 statement.\n"},
                ]
            },
        },
    }
    nb.metadata["widgets"] = {site.WIDGET_STATE: {"state": models, "version_major": 2, "version_minor": 0}}
    return nb


def test_widgets_become_their_controls_and_what_they_displayed() -> None:
    nb = site.flatten_widgets(_widget_notebook())
    outputs = nb.cells[1].outputs
    assert "widgets" not in nb.metadata
    assert [o.output_type for o in outputs] == ["display_data", "display_data", "stream"]
    assert "largest N: 1000 (slider over 100 … 1000)" in outputs[0].data["text/html"]
    assert "image/png" in outputs[1].data
    assert outputs[2].text == "At N=1000: 1 statement.\n"


def test_a_page_links_lessons_to_pages_and_loads_nothing_from_the_network() -> None:
    page = site.render(_widget_notebook(), LESSONS[2], run_note="executed on sqlite at size tiny in 3 s")
    assert 'href="01_baseline_app.html"' in page and 'href="00_start_here.html"' in page
    assert ".ipynb" not in re.sub(r"<style.*?</style>", "", page, flags=re.S)
    assert not re.findall(r'<script[^>]+src="https?://', page), "a page must open offline"
    assert "executed on sqlite at size tiny in 3 s" in page
    assert 'href="index.html"' in page and 'href="03_joins_and_n_plus_one.html"' in page
    assert "data:image/png;base64," in page


def test_build_site_writes_every_page_and_an_index(tmp_path: Path) -> None:
    calls = []

    def fake_execute(path: Path, **kwargs: Any) -> nbformat.NotebookNode:
        calls.append((path.name, kwargs))
        if path.name == LESSONS[1].filename:
            raise RuntimeError("An error occurred while executing the following cell:\nboom\nValueError: bad")
        return nbformat.read(path, as_version=4)

    paths = [ROOT / "notebooks" / lesson.filename for lesson in LESSONS[:3]][::-1]
    pages = site.build_site(paths, tmp_path, size="tiny", execute=fake_execute)
    assert [p.lesson for p in pages] == list(LESSONS[:3]), "pages come in lesson order"
    assert {kwargs["size"] for _, kwargs in calls} == {"tiny"}
    assert pages[1].error == "ValueError: bad" and pages[0].error is None
    index = (tmp_path / "index.html").read_text()
    for lesson in LESSONS[:3]:
        assert (tmp_path / site.html_name(lesson.filename)).exists()
        assert f'href="{site.html_name(lesson.filename)}"' in index
    assert "failed" in index
    assert "did not run to the end" in (tmp_path / site.html_name(LESSONS[1].filename)).read_text()


def test_unknown_notebooks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="Not a lesson"):
        site.build_site([tmp_path / "scratch.ipynb"], tmp_path, size="tiny")
