#!/usr/bin/env python
"""Report notebook cells that keep what they should not: outputs or execution counts on cells not tagged
``nbval-check-output`` (those are committed with their outputs, which nbval compares).

    python tools/check_notebooks.py notebooks      # prints nothing, exit 0, when every notebook is clean
"""
import json
import sys
from pathlib import Path

CHECKED = "nbval-check-output"


def problems(path):
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "code" or CHECKED in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.get("outputs"):
            yield f"{path}: cell {number} keeps {len(cell['outputs'])} output(s) but is not tagged {CHECKED}"
        if cell.get("execution_count") is not None:
            yield f"{path}: cell {number} keeps execution count {cell['execution_count']}"


def main(folders):
    found = [line for folder in folders or ["notebooks"] for nb in sorted(Path(folder).glob("*.ipynb"))
             for line in problems(nb)]
    print("\n".join(found), end="\n" if found else "")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
