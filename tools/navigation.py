"""Rewrite each lesson notebook's first line (← previous · contents · next →) from helpers.lessons.LESSONS.

python -m tools.navigation          # after adding a lesson to LESSONS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers.lessons import LESSONS, navigation_line

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    changed = 0
    for lesson in LESSONS:
        path = ROOT / "notebooks" / lesson.filename
        if not path.exists():
            print(f"missing: {path.name}", file=sys.stderr)
            continue
        nb = json.loads(path.read_text())
        first = nb["cells"][0]
        lines = "".join(first["source"]).split("\n")
        wanted = navigation_line(lesson.number)
        if lines[0] != wanted:
            lines[0] = wanted
            text = "\n".join(lines)
            first["source"] = [line + "\n" for line in text.split("\n")[:-1]] + [text.split("\n")[-1]]
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed += 1
            print(f"updated: {path.name}")
    return 0 if changed >= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
