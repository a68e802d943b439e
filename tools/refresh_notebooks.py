#!/usr/bin/env python3
"""Execute notebooks and keep only the outputs nbval checks (maintainers' tool).

    python tools/refresh_notebooks.py notebooks/01_dataset.ipynb [...]
    python tools/refresh_notebooks.py --slides-only notebooks/*.ipynb   # metadata and course cells only, no execution

Each notebook runs from a fresh kernel in its own folder, with the tiny test model
(WORKBOOK_TEST_MODEL=1), as CI runs it. Afterwards every cell loses its outputs and
execution count except cells tagged ``nbval-check-output``; those keep their outputs, which
become what nbval compares against. Every cell also gets slideshow metadata (see "slides" below),
so ``jupyter nbconvert --to slides`` and RISE follow the lecture's sections, and its first cell gets
the time lines of docs/time_budget.json. Both ways, the course cells are set from their one home
(``set_course_cells``): after the title, the launch badges (Colab, Binder) and the setup cell
(helpers/classroom/colab.py); in notebook 1 the threads line; and each ``check_activity_N(...)`` cell
becomes an nbgrader test cell (helpers/activities/grading.py). Review the diff before committing.
"""
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import time_budget  # noqa: E402  (tools/time_budget.py: the times, stated once)
from helpers.activities.grading import check_cell_activity, graded_source, nbgrader_metadata  # noqa: E402
from helpers.classroom.colab import BADGE_TAG, SETUP_CELL, SETUP_TAG, THREADS_CELL, THREADS_TAG, badges  # noqa: E402

CHECK_TAG = "nbval-check-output"


def is_checked(cell):
    return CHECK_TAG in cell.get("metadata", {}).get("tags", [])


# ---------------------------------------------------------------------------- slides
# Every slide is a top-level reveal.js slide (no vertical stacks), so → and ← reach every one, live (RISE) and in
# the offline decks. Cells are packed onto slides by their estimated height at notebooks/rise.css's sizes
# (prose 22 px, code and output 18 px), measured on the executed notebook's outputs: a heading opens a slide, a
# cell that would not fit opens the next one, and short neighbours share a slide. tests/test_browser.py checks
# the result in Chromium at 1280x720.
SLIDE_BUDGET = 640     # px of content a 1280x720 slide holds with its margins
PROSE_LINE, PROSE_CHARS, PARAGRAPH_GAP = 31, 100, 10
CODE_LINE, CODE_CHARS, CELL_GAP = 24, 95, 24
LOG_LINES, SOURCE_LINES, FIGURE_MAX, WIDGET, TABLE_MAX = 10, 20, 580, 210, 384
HEADINGS = {"# ": 60, "## ": 52, "### ": 44}
SHORT = 160            # a cell estimated this short (under ~110 px on screen) never gets a slide to itself


def _wrapped(text, width):
    return sum(max(1, -(-len(line) // width)) for line in text.split("\n"))


def _shown(markdown_line):
    """The text a line of markdown shows: link targets, emphasis and code marks dropped."""
    return re.sub(r"\]\([^)]*\)|[*`]|\[|<[^>]+>", "", markdown_line)


def markdown_height(source) -> int:
    height, in_paragraph = 0, False
    for line in source.strip().splitlines():
        heading = next((h for prefix, h in HEADINGS.items() if line.startswith(prefix)), None)
        if heading:
            height, in_paragraph = height + heading, False
        elif not line.strip():
            height += PARAGRAPH_GAP if in_paragraph else 0
            in_paragraph = False
        elif line.strip() == "---":
            height += 20
        elif line.startswith("|"):
            cells = [cell for cell in line.strip().strip("|").split("|")]
            if not set(line) <= set("|- :"):  # a row: as tall as its most wrapped cell
                width = PROSE_CHARS / max(1, len(cells))
                height += 8 + PROSE_LINE * max(_wrapped(_shown(cell.strip()), max(8, int(width))) for cell in cells)
            in_paragraph = True
        elif line.startswith(("<details", "</details", "<summary")):
            height += PROSE_LINE if line.startswith("<details") else 0
        else:
            height, in_paragraph = height + PROSE_LINE * _wrapped(_shown(line), PROSE_CHARS), True
    return height + CELL_GAP


def output_height(output) -> int:
    kind, data = output.get("output_type"), output.get("data", {})
    if kind == "stream":
        return min(LOG_LINES, _wrapped(output.get("text", "").rstrip("\n"), 100)) * CODE_LINE
    if "application/vnd.jupyter.widget-view+json" in data:
        return WIDGET
    html = data.get("text/html", "")
    if "workbook-source" in html:  # its lines, up to the box's height (rise.css)
        code = re.sub(r"<[^>]+>", "", html.split("</style>")[-1])
        return min(SOURCE_LINES, code.strip().count("\n") + 1) * CODE_LINE + 16
    image = re.search(r'<img [^>]*width="(\d+)" height="(\d+)"', html)
    if image:
        width, height = int(image[1]), int(image[2])
        return min(FIGURE_MAX, height * min(1.0, 1120 / width))
    if "workbook-progress" in html or (not html and not data.get("text/plain", "").strip()):
        return 0
    if "<table" in html or "<tr" in html:
        return min(TABLE_MAX, 30 + 28 * html.count("<tr"))  # a taller one scrolls in its box (rise.css)
    if html:
        return PROSE_LINE * max(1, html.count("<br") + html.count("<p") + html.count("<li"))
    return min(LOG_LINES, _wrapped(data.get("text/plain", ""), 100)) * CODE_LINE


def cell_height(cell) -> int:
    if cell.cell_type == "markdown":
        return markdown_height(cell.source)
    code = _wrapped(cell.source.rstrip(), CODE_CHARS) * CODE_LINE + 12
    return code + sum(output_height(o) + 6 for o in cell.get("outputs", [])) + CELL_GAP


def opens_slide(cell) -> str:
    """"always" for a # or ## heading, "section" for ###, "" otherwise."""
    first = next((line for line in cell.source.splitlines() if line.strip() and line.strip() != "---"), "")
    if cell.cell_type != "markdown":
        return ""
    return "always" if first.startswith(("# ", "## ")) else ("section" if first.startswith("### ") else "")


def set_slide_metadata(nb) -> None:
    """Slide types for the executed ``nb``: "slide" where a slide starts, "-" where a cell continues it,
    "skip" for the course cells (badges, setup), as if absent."""
    slides = []  # lists of (cell, height)
    for cell in nb.cells:
        if is_course_cell(cell):  # badges and setup: not on a slide
            cell.metadata["slideshow"] = {"slide_type": "skip"}
            continue
        height, opens = cell_height(cell), opens_slide(cell)
        used = sum(h for _, h in slides[-1]) if slides else None
        if (used is None or opens == "always" or (opens == "section" and used > SLIDE_BUDGET * 0.4)
                or used + height > SLIDE_BUDGET):
            slides.append([])
        slides[-1].append((cell, height))
    # no slide that is one short cell on an empty page: it joins a neighbour (a little over the budget is fine)
    for i in range(len(slides) - 1, 0, -1):
        (cell, height), = slides[i] if len(slides[i]) == 1 else [(None, SLIDE_BUDGET)]
        if cell is None or height >= SHORT or opens_slide(cell) == "always":
            continue
        before = sum(h for _, h in slides[i - 1])
        after = i + 1 < len(slides) and opens_slide(slides[i + 1][0][0]) != "always"
        if before + height <= SLIDE_BUDGET + 50:
            slides[i - 1] += slides.pop(i)
        elif after and sum(h for _, h in slides[i + 1]) + height <= SLIDE_BUDGET + 50:
            slides[i] += slides.pop(i + 1)
    for slide in slides:
        for number, (cell, _) in enumerate(slide):
            cell.metadata["slideshow"] = {"slide_type": "slide" if number == 0 else "-"}


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
    set_slide_metadata(nb)  # from the executed outputs: how tall each cell really is
    nb.cells[0].source = time_budget.with_time_block(nb.cells[0].source, path.name[:2])
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
    """Only the course cells and the slideshow metadata, without executing (``--slides-only``): heights are
    estimated from the outputs the notebook holds (none for most cells), so a full refresh is better."""
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
