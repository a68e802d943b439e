"""A figure together with the words that say what it shows.

Every figure the workbook draws comes back as a :class:`DescribedFigure`: the matplotlib Figure, and a
description written from the same data (chart type, axes, the numbers that matter). In a notebook it shows
as a PNG image whose ``alt`` text is that description, so a screen reader reads it, and JupyterLab, the
HTML export and the slide decks all keep it. Anything else (``axes``, ``savefig``, ``get_size_inches`` …)
is the Figure's own.
"""
import base64
import html
import io

import matplotlib.pyplot as plt

DPI = 100  # as Jupyter's inline backend draws: 12 pt text is about 17 px on a 1280x720 slide


def png_size(data: bytes) -> tuple:
    """(width, height) in pixels, from a PNG's header."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


class DescribedFigure:
    """A matplotlib Figure and its description; displayed as an image with the description as alt text."""

    def __init__(self, figure, description: str):
        self.figure, self.description = figure, " ".join(description.split())
        plt.close(figure)  # shown by its own display below, not a second time by the inline backend

    def __getattr__(self, name):  # only called for what this object lacks: the Figure has it
        return getattr(self.figure, name)

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        return buffer.getvalue()

    def html(self) -> str:
        data = self.png()
        width, height = png_size(data)
        return (f'<img src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}" '
                f'alt="{html.escape(self.description, quote=True)}" width="{width}" height="{height}" '
                'style="max-width:100%;height:auto">')

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html(), "text/plain": self.description}

    def __repr__(self):
        return f"<figure: {self.description}>"


def number(value, digits=3) -> str:
    """A number for a description: whole numbers with thousands separators, others to ``digits`` significant."""
    value = float(value)
    if value.is_integer():
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def percent(value) -> str:
    """A fraction (0–1) as a percentage with one decimal."""
    return f"{float(value) * 100:.1f} %"
