#!/usr/bin/env python3
"""Execute notebooks and keep only the outputs nbval checks (maintainers' tool).

    python tools/refresh_notebooks.py notebooks/01_dataset.ipynb [...]

Each notebook runs from a fresh kernel in its own folder, with the tiny test model
(WORKBOOK_TEST_MODEL=1), as CI runs it. Afterwards every cell loses its outputs and
execution count except cells tagged ``nbval-check-output``; those keep their outputs, which
become what nbval compares against. Every cell also gets slideshow metadata from its text
(headings open slides), so ``jupyter nbconvert --to slides`` and RISE follow the lecture's
sections. Review the diff before committing.
"""
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CHECK_TAG = "nbval-check-output"


def is_checked(cell):
    return CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def slide_type(cell, previous):
    """Slideshow metadata from the text: '#'/'##' headings open a slide, '###' a sub-slide."""
    if cell.cell_type != "markdown":
        return "-"
    first = next((line for line in cell.source.splitlines() if line.strip() and line.strip() != "---"), "")
    if first.startswith(("# ", "## ")):
        return "slide"
    if first.startswith("### ") or (previous is not None and previous.cell_type == "code"):
        return "subslide"
    return "-"


def refresh(path: Path, timeout: int = 1200) -> None:
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("WORKBOOK_TEST_MODEL", "1")
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    previous = None
    for cell in nb.cells:
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell, previous)}
        previous = cell
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if not is_checked(cell):  # checked cells keep outputs and count: nbval needs both
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)
    print(f"refreshed {path}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        refresh(Path(arg))
