"""Showing the package's own code inside a notebook, so the notebook never holds a stale copy."""
import html
import inspect

#: The tallest a shown source gets on a slide (it scrolls inside its box beyond that), so a long class
#: still leaves its slide's heading and explanation in view at 1280x720 (tests/test_browser.py checks).
SOURCE_MAX_HEIGHT_PX = 600


class SourceBox:
    """Highlighted source in a box no taller than ``SOURCE_MAX_HEIGHT_PX`` (scrolls inside); plain text elsewhere.

    The box is a labelled region that takes the keyboard focus (tabindex), so it can be scrolled without a mouse.
    """

    def __init__(self, code, name="the code"):
        self.code, self.name = code, name

    def _repr_html_(self):
        return (f'<div class="workbook-source" tabindex="0" role="region" aria-label="Source code of '
                f'{html.escape(self.name, quote=True)}" style="max-height: {SOURCE_MAX_HEIGHT_PX}px; overflow: auto">'
                f"{self.code._repr_html_()}</div>")

    def __repr__(self):
        return self.code.data


def show_source(obj):
    """Display the source of a helpers function or class, syntax-highlighted in Jupyter."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Code, display
    except ImportError:  # plain Python: print it
        print(source)
        return
    display(SourceBox(Code(source, language="python"), getattr(obj, "__qualname__", repr(obj))))
