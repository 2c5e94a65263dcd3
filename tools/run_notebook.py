"""Execute notebooks on a fresh kernel, as the tests do, keeping the executed copy for reading.

python -m tools.run_notebook notebooks/02_projection.ipynb [--size tiny] [--backend sqlite] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError

from helpers.bench.notebooks import execute_notebook


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
            nb = execute_notebook(path.resolve(), size=args.size, backend=args.backend, cache=args.cache)
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
