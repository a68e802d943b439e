"""Showing the package's own code inside a notebook, so the notebook never holds a stale copy."""
import html
import inspect

class SourceBox:
    """Highlighted source, shown whole in a notebook and in an export; on a slide (notebooks/rise.css) it is a box
    of at most 20 lines that scrolls inside, labelled and taking the keyboard focus (tabindex) so it can be
    scrolled without a mouse. Plain text elsewhere."""

    def __init__(self, code, name="the code"):
        self.code, self.name = code, name

    def _repr_html_(self):
        return (f'<div class="workbook-source" tabindex="0" role="region" aria-label="Source code of '
                f'{html.escape(self.name, quote=True)}">{self.code._repr_html_()}</div>')

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
