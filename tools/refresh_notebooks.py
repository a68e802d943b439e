#!/usr/bin/env python3
"""Execute notebooks and keep only the outputs nbval checks (maintainers' tool).

    python tools/refresh_notebooks.py notebooks/01_dataset.ipynb [...]
    python tools/refresh_notebooks.py --slides-only notebooks/*.ipynb   # metadata and course cells only, no execution

Each notebook runs from a fresh kernel in its own folder, with the tiny test model
(WORKBOOK_TEST_MODEL=1), as CI runs it. Afterwards every cell loses its outputs and
execution count except cells tagged ``nbval-check-output``; those keep their outputs, which
become what nbval compares against. Every cell also gets slideshow metadata from its text
(headings open slides), so ``jupyter nbconvert --to slides`` and RISE follow the lecture's
sections. Both ways, the course cells are set from their one home (``set_course_cells``): after the
title, the launch badges (Colab, Binder) and the setup cell (helpers/classroom/colab.py); in notebook 1
the threads line; and each ``check_activity_N(...)`` cell becomes an nbgrader test cell
(helpers/activities/grading.py). Review the diff before committing.
"""
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers.activities.grading import check_cell_activity, graded_source, nbgrader_metadata  # noqa: E402
from helpers.classroom.colab import BADGE_TAG, SETUP_CELL, SETUP_TAG, THREADS_CELL, THREADS_TAG, badges  # noqa: E402

CHECK_TAG = "nbval-check-output"


def is_checked(cell):
    return CHECK_TAG in cell.get("metadata", {}).get("tags", [])


#: A markdown cell longer than this fills most of a 1280x720 slide: the code after it gets a sub-slide of its own.
LONG_MARKDOWN_LINES = 5
#: A code cell longer than this fills most of a slide on its own: it gets a sub-slide of its own.
LONG_CODE_LINES = 12


def shows_a_lot(cell):
    """A figure (up to 580 px, notebooks/rise.css) or shown source (up to 600 px): a sub-slide of its own."""
    return bool(re.search(r"^\s*(show_source\(|plot_\w+\()", cell.source, re.M))


def slide_type(cell, previous):
    """Slideshow metadata from the text, so every RISE slide fits 1280x720 (tests/test_browser.py checks).

    Markdown: '#'/'##' headings open a slide; '###' headings and text after code open a sub-slide.
    Code: a code cell after another code cell, after a long markdown cell, or long itself, opens a
    sub-slide, so each slide shows at most one cell's code and output under its explanation. A cell that
    draws a figure or shows source opens a sub-slide too: those outputs get most of the slide.
    notebooks/rise.css sizes code, tables and figures for the slides.
    """
    if cell.cell_type != "markdown":
        if previous is None:
            return "-"
        if (previous.cell_type == "code" or len(previous.source.splitlines()) > LONG_MARKDOWN_LINES
                or len(cell.source.splitlines()) > LONG_CODE_LINES or shows_a_lot(cell)):
            return "subslide"
        return "-"
    first = next((line for line in cell.source.splitlines() if line.strip() and line.strip() != "---"), "")
    if first.startswith(("# ", "## ")):
        return "slide"
    if first.startswith("### ") or (previous is not None and previous.cell_type == "code"):
        return "subslide"
    return "-"


def set_slide_metadata(nb) -> None:
    """Slide types from the text; the course cells (badges, setup) are skipped on slides, as if absent."""
    previous = None
    for cell in nb.cells:
        if is_course_cell(cell):
            cell.metadata["slideshow"] = {"slide_type": "skip"}
            continue
        cell.metadata["slideshow"] = {"slide_type": slide_type(cell, previous)}
        previous = cell


# --------------------------------------------------------------------------- course cells (issue: a course of sixty)
COURSE_TAGS = (BADGE_TAG, SETUP_TAG, THREADS_TAG)


def is_course_cell(cell):
    return bool(set(cell.get("metadata", {}).get("tags", [])) & set(COURSE_TAGS))


def course_cells(name):
    """The cells that follow a notebook's title: launch badges, setup cell, and in notebook 1 the threads line."""
    def tagged(cell, tag):
        cell.metadata["tags"] = [tag]
        cell.id = tag  # a stable id: refreshing again changes nothing
        return cell

    cells = [tagged(nbformat.v4.new_markdown_cell(badges(name)), BADGE_TAG),
             tagged(nbformat.v4.new_code_cell(SETUP_CELL), SETUP_TAG)]
    if name.startswith("01_"):
        cells.append(tagged(nbformat.v4.new_code_cell(THREADS_CELL), THREADS_TAG))
    return cells


def set_course_cells(nb, name) -> None:
    """Course cells after the title (replacing earlier ones), nbgrader metadata on the activity check cells."""
    cells = [cell for cell in nb.cells if not is_course_cell(cell)]
    nb.cells = cells[:1] + course_cells(name) + cells[1:]
    for cell in nb.cells:
        activity = check_cell_activity(cell.source) if cell.cell_type == "code" else None
        if activity is not None:
            cell.source = graded_source(cell.source, activity)
            cell.metadata["nbgrader"] = nbgrader_metadata(activity)
        else:
            cell.metadata.pop("nbgrader", None)


def refresh(path: Path, timeout: int = 1200) -> None:
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("WORKBOOK_TEST_MODEL", "1")
    set_course_cells(nb, path.name)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    set_slide_metadata(nb)
    for cell in nb.cells:
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


def refresh_slides(path: Path) -> None:
    """Only the course cells and the slideshow metadata, without executing (``--slides-only``)."""
    nb = nbformat.read(path, as_version=4)
    set_course_cells(nb, path.name)
    set_slide_metadata(nb)
    nbformat.write(nb, path)
    print(f"course cells and slide metadata set in {path}")


if __name__ == "__main__":
    args = sys.argv[1:]
    slides_only = "--slides-only" in args
    for arg in (a for a in args if a != "--slides-only"):
        (refresh_slides if slides_only else refresh)(Path(arg))
