"""Execute notebooks on a fresh kernel, as the tests do, keeping the executed copy for reading.

python -m tools.run_notebook notebooks/02_projection.ipynb [--size tiny] [--backend sqlite] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


def execute(
    path: Path, *, size: str, backend: str, cache: str, timeout: int = 900, times: int = 1
) -> nbformat.NotebookNode:
    """Run every cell of `path` in a new kernel with the course environment set; raise on the first error.

    `times=2` runs all cells twice in the same kernel, as a learner pressing Run All again would.
    """
    nb = nbformat.read(path, as_version=4)
    nb.cells = [copy.deepcopy(cell) for _ in range(times) for cell in nb.cells]
    env = {
        "COURSE_SIZE": size,
        "COURSE_BACKEND": backend,
        "COURSE_CACHE": cache,
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        client.execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--cache", default="simple")
    parser.add_argument("--out", type=Path, default=Path("/tmp/executed"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.notebooks:
        started = time.perf_counter()
        try:
            nb = execute(path.resolve(), size=args.size, backend=args.backend, cache=args.cache)
            status = "ok"
        except CellExecutionError as exc:
            nb, status, failed = None, f"FAILED\n{exc}", failed + 1
        print(f"{path.name} [{args.size}/{args.backend}]: {status} in {time.perf_counter() - started:.1f} s")
        if nb is not None:
            out = args.out / f"{path.stem}.{args.size}.{args.backend}.ipynb"
            nbformat.write(nb, out)
            print(f"  executed copy: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
