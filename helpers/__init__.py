"""The course's infrastructure, an installed and typed package. Notebooks import from a small surface:

* `helpers.course` — `setup(lesson)`, the `Course` every lesson works through;
* `helpers.measure.*` — the measuring core: `harness` (compare, measure, scaling), `recorder`, `plans`,
  `units`, `plots`, `widgets` (the rerun widget, `predict`), `display`, `results`;
* `helpers.topics.<topic>` — the instruments of one lesson (caching, pooling, batching, profiling, ...);
* `helpers.exercises` (`____`) and `helpers.exercises.lessonNN` (`exercises(course)`), and for the capstone
  `helpers.exercises.saved_views`;
* `helpers.shop.kit` (everything a view is written with), `helpers.shop.models`, and the shop's modules shown as
  code; `helpers.library.models` (the on-call lesson's app);
* `helpers.data` (copies, row counts), `helpers.claims`, `helpers.instructor`, `helpers.servers`, `helpers.db`.

The rest (the bench, the command line, serving, JupyterLab, the dataset builder's internals, the exercises'
machinery) is the course's own business. `tests/test_imports.py` holds the notebooks to this surface.
"""

__all__: list[str] = []
