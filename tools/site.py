"""The course as a static site: each lesson executed, rendered to HTML with outputs and charts, linked in order.

python -m tools.site [--size small] [--backend sqlite] [--cache simple] [--out data/site] [notebooks ...]

Pages work offline (charts are embedded, no script is loaded from the network). Widgets cannot run
without a kernel, so each one is shown as what it displayed when the lesson ran: the tables and charts
inside it, and a line naming its controls ("interactive in JupyterLab").
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter

from helpers.lessons import LESSONS, Lesson, navigation

ROOT = Path(__file__).resolve().parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

_TEMPLATE = """
{%- extends 'lab/index.html.j2' -%}
{#- Nothing from the network: no require.js, no widget manager (widgets are flattened), no mermaid. -#}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
{%- if resources.course.math %}{{ super() }}{% endif -%}
{%- endblock html_head_js_mathjax -%}
{%- block extra_css -%}
<style type="text/css">
.course-bar { font: 14px/1.6 var(--jp-ui-font-family, sans-serif); padding: 8px 16px; background: #f3f5f8;
  border-bottom: 1px solid #d8dde5; display: flex; gap: 1.5em; flex-wrap: wrap; align-items: baseline; }
.course-bar.bottom { border-top: 1px solid #d8dde5; border-bottom: none; margin-top: 2em; }
.course-bar a { color: #1a5fb4; text-decoration: none; }
.course-bar a:hover { text-decoration: underline; }
.course-bar .course-run { margin-left: auto; color: #555; }
.course-failed { margin: 12px 16px; padding: 10px 14px; border: 1px solid #c33; background: #fdeeee; }
.course-controls { font: 13px/1.6 var(--jp-ui-font-family, sans-serif); color: #444; margin: 4px 0; }
.course-control { display: inline-block; border: 1px solid #b8c0cc; border-radius: 3px; padding: 0 8px;
  margin-right: 6px; background: #fafbfc; }
.course-controls .course-note { color: #777; font-style: italic; }
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.course.top }}
{{ resources.course.banner }}
{%- endblock body_header -%}
{%- block body_footer -%}
{{ resources.course.bottom }}
{{ super() }}
{%- endblock body_footer -%}
"""


@dataclass(frozen=True)
class Page:
    """One lesson of the site: where it came from, whether it ran, how long it took."""

    lesson: Lesson
    html_name: str
    seconds: float
    error: str | None = None


def html_name(filename: str) -> str:
    return Path(filename).with_suffix(".html").name


def link_pages(text: str) -> str:
    """Point links between lessons (`NN_topic.ipynb`) at their pages (`NN_topic.html`)."""
    names = "|".join(re.escape(Path(lesson.filename).stem) for lesson in LESSONS)
    return re.sub(rf'href="({names})\.ipynb(#[^"]*)?"', lambda m: f'href="{m[1]}.html{m[2] or ""}"', text)


# ---------------------------------------------------------------------------------------------------- widgets


def _control_text(model: str, state: dict[str, Any]) -> str | None:
    """How a control looks in one short phrase, or None for models that are not controls."""
    description = str(state.get("description") or "").strip()
    if model == "ButtonModel":
        return description or "button"
    labels = state.get("_options_labels")
    if labels is not None:  # dropdowns, selection sliders, toggle buttons
        index = state.get("index")
        current = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else "–"
        kind = "slider" if "Slider" in model else "choice"
        span = f"{labels[0]} … {labels[-1]}" if labels else ""
        return f"{description}: {current} ({kind} over {span})".strip()
    if model in ("IntSliderModel", "FloatSliderModel", "FloatLogSliderModel", "IntRangeSliderModel"):
        return f"{description}: {state.get('value')} (slider {state.get('min')} … {state.get('max')})"
    if model in ("CheckboxModel", "ToggleButtonModel"):
        return f"{'☑' if state.get('value') else '☐'} {description}"
    if model in ("TextModel", "TextareaModel", "IntTextModel", "FloatTextModel"):
        return f"{description}: {state.get('value')}"
    return None


def _widget_outputs(model_id: str, models: dict[str, Any], seen: set[str]) -> list[dict[str, Any]]:
    """The static outputs standing for one widget: its controls as one line, then what it displayed."""
    if model_id in seen or model_id not in models:
        return []
    seen.add(model_id)
    model = models[model_id].get("model_name", "")
    state = models[model_id].get("state", {})
    if model == "OutputModel":
        return _flatten_outputs(state.get("outputs", []), models, seen)
    if model in ("HTMLModel", "HTMLMathModel", "LabelModel"):
        value = str(state.get("value", ""))
        body = value if model != "LabelModel" else html.escape(value)
        return [_html_output(f'<div class="course-widget-html">{body}</div>')] if value else []
    children = state.get("children")
    if isinstance(children, list):  # VBox, HBox, Box, GridBox, Accordion, Tab
        result: list[dict[str, Any]] = []
        controls: list[str] = []
        for child in children:
            child_id = str(child).removeprefix("IPY_MODEL_")
            child_model = models.get(child_id, {})
            text = _control_text(child_model.get("model_name", ""), child_model.get("state", {}))
            if text is not None:
                controls.append(text)
                continue
            if controls:
                result.append(_controls_output(controls))
                controls = []
            result += _widget_outputs(child_id, models, seen)
        if controls:
            result.append(_controls_output(controls))
        return result
    text = _control_text(model, state)
    return [_controls_output([text])] if text is not None else []


def _html_output(body: str) -> dict[str, Any]:
    return nbformat.v4.new_output("display_data", data={"text/html": body})


def _controls_output(controls: list[str]) -> dict[str, Any]:
    spans = "".join(f'<span class="course-control">{html.escape(text)}</span>' for text in controls)
    return _html_output(
        f'<div class="course-controls">{spans}<span class="course-note">interactive in JupyterLab</span></div>'
    )


def _flatten_outputs(
    outputs: Iterable[dict[str, Any]], models: dict[str, Any], seen: set[str]
) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for output in outputs:
        view = output.get("data", {}).get(WIDGET_VIEW) if output.get("output_type") != "stream" else None
        if view is None:
            flat.append(nbformat.from_dict(output))
        else:
            flat += _widget_outputs(str(view.get("model_id", "")), models, seen)
    return flat


def flatten_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Replace every widget with the outputs it showed when the notebook ran, and drop the widget state."""
    models = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = _flatten_outputs(cell.get("outputs", []), models, set())
    nb.metadata.pop("widgets", None)
    return nb


# ---------------------------------------------------------------------------------------------------- pages


def _header(run_note: str) -> str:
    """Above each page (whose own first line is the lesson's navigation line): the way home, and the run."""
    note = f'<span class="course-run">{html.escape(run_note)}</span>' if run_note else ""
    return f'<nav class="course-bar"><a href="index.html">⌂ Course contents</a>{note}</nav>'


def _footer(lesson: Lesson) -> str:
    """Previous · contents · next, as at the top of each notebook, for the end of its page."""
    parts = [
        f'<a href="{html_name(target.filename) if target else "index.html"}">{html.escape(text)}</a>'
        for text, target in navigation(lesson.number)
    ]
    return f'<nav class="course-bar bottom">{" · ".join(parts)}</nav>'


def render(nb: nbformat.NotebookNode, lesson: Lesson, *, run_note: str = "", error: str | None = None) -> str:
    """One lesson as a standalone HTML page, with the course's navigation above and below."""
    nb = flatten_widgets(nb)
    math = any(cell.cell_type == "markdown" and "$" in cell.source for cell in nb.cells)
    banner = (
        f'<div class="course-failed"><b>This lesson did not run to the end when the site was built:</b> '
        f"{html.escape(error)}</div>"
        if error
        else ""
    )
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({"course.html.j2": _TEMPLATE})],
        template_file="course.html.j2",
    )
    resources = {
        "metadata": {"name": f"{lesson.number} · {lesson.title}"},
        "course": {
            "top": _header(run_note),
            "bottom": _footer(lesson),
            "banner": banner,
            "math": math,
        },
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return link_pages(body)


def index_page(pages: list[Page], *, size: str, backend: str, built_at: str) -> str:
    """The site's contents: every lesson in order, with how long it took to run and whether it ran."""
    rows = []
    for page in pages:
        status = "ran" if page.error is None else "<b>failed</b>"
        rows.append(
            f'<tr><td>{page.lesson.number}</td><td><a href="{page.html_name}">{html.escape(page.lesson.title)}'
            f"</a></td><td>{status}</td><td>{page.seconds:.0f} s</td></tr>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Making a Flask + SQLAlchemy app fast — the course</title>
<style>
body {{ font: 16px/1.6 system-ui, sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; }}
th {{ text-align: left; }} td:nth-child(4) {{ text-align: right; }} a {{ color: #1a5fb4; }}
.note {{ color: #555; }}
</style></head>
<body>
<h1>Making a Flask + SQLAlchemy app fast — measured, one step at a time</h1>
<p>Every lesson below was executed on {html.escape(backend)} at size <b>{html.escape(size)}</b> on {built_at}.
Every number on these pages was measured in that run, on the machine that built the site: your own run of a
lesson (<code>make lab</code>) measures your machine.</p>
<table><thead><tr><th>#</th><th>lesson</th><th>status</th><th>run time</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p class="note">Widgets (buttons, sliders, pickers) show what they displayed when the lesson ran; they are
interactive in JupyterLab only.</p>
</body></html>
"""


# ---------------------------------------------------------------------------------------------------- build


def build_site(
    paths: list[Path],
    out: Path,
    *,
    size: str,
    backend: str = "sqlite",
    cache: str = "simple",
    execute: Callable[..., nbformat.NotebookNode] | None = None,
) -> list[Page]:
    """Execute each notebook, write its page into `out` and an index.html; returns the pages in order.

    Measurements go to a results store of their own, so building the site leaves the learner's history alone.
    """
    if execute is None:
        from helpers.bench.notebooks import execute_notebook as run

        execute = run
    by_name = {lesson.filename: lesson for lesson in LESSONS}
    unknown = [p.name for p in paths if p.name not in by_name]
    if unknown:
        raise SystemExit(f"Not a lesson in helpers.lessons.LESSONS: {', '.join(unknown)}")
    out.mkdir(parents=True, exist_ok=True)
    pages: list[Page] = []
    saved = os.environ.get("COURSE_RESULTS_PATH")
    with tempfile.TemporaryDirectory(prefix="course-site-") as scratch:
        os.environ["COURSE_RESULTS_PATH"] = str(Path(scratch) / "results.sqlite")
        try:
            for path in sorted(paths, key=lambda p: LESSONS.index(by_name[p.name])):
                lesson = by_name[path.name]
                started = time.perf_counter()
                error = None
                try:
                    nb = execute(path, size=size, backend=backend, cache=cache)
                except Exception as exc:  # a failed lesson still gets its page, marked, and the build fails
                    nb = nbformat.read(path, as_version=4)
                    lines = str(exc).strip().splitlines()
                    error = next((line for line in reversed(lines) if line.strip()), type(exc).__name__)
                seconds = time.perf_counter() - started
                note = f"executed on {backend} at size {size} in {seconds:.0f} s"
                page = Page(lesson, html_name(lesson.filename), seconds, error)
                (out / page.html_name).write_text(render(nb, lesson, run_note=note, error=error))
                pages.append(page)
                print(f"{page.html_name}: {'ok' if error is None else 'FAILED: ' + error} ({seconds:.1f} s)")
        finally:
            if saved is None:
                os.environ.pop("COURSE_RESULTS_PATH", None)
            else:
                os.environ["COURSE_RESULTS_PATH"] = saved
    built_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (out / "index.html").write_text(index_page(pages, size=size, backend=backend, built_at=built_at))
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="lessons to render (default: every lesson)")
    parser.add_argument("--size", default="small")
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--cache", default="simple")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "site")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or [
        ROOT / "notebooks" / lesson.filename
        for lesson in LESSONS
        if (ROOT / "notebooks" / lesson.filename).exists()
    ]
    started = time.perf_counter()
    pages = build_site(paths, args.out, size=args.size, backend=args.backend, cache=args.cache)
    failed = [page.lesson.filename for page in pages if page.error]
    print(f"The site is in {args.out}/index.html ({len(pages)} pages, {time.perf_counter() - started:.0f} s).")
    if failed:
        print(f"Lessons that failed to run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
