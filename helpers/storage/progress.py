"""Progress bars that leave nothing stale behind: tqdm, shown in a notebook as one output that is updated in place.

In a terminal it is tqdm's own bar on stderr. In a notebook, tqdm's usual widget keeps its first frame
("Epoch 1: 0%| | 0/130") in the saved or executed notebook, because a widget's later states are not outputs:
reopened, exported or presented as slides, every log would start with that stale line. Here the bar is an
ordinary output updated in place (``update_display_data``): a native ``<progress>`` element and tqdm's text,
so the notebook always holds its latest state, and it is emptied when the bar closes. ``TQDM_DISABLE=1`` (or
``disable=True``) turns every bar off.
"""
import html
import os

from tqdm.std import tqdm as std_tqdm


def ipython_shell():
    """The running IPython shell (a notebook's kernel, or IPython in a terminal), or None outside IPython."""
    try:
        return get_ipython()  # noqa: F821 (defined inside IPython only)
    except NameError:
        return None


def _in_a_notebook() -> bool:
    return getattr(ipython_shell(), "kernel", None) is not None  # a kernel (JupyterLab, Colab), not a terminal


class NotebookBar(std_tqdm):
    """tqdm drawn as one notebook output (a ``<progress>`` element and tqdm's text), emptied when it closes."""

    def __init__(self, *args, **kwargs):
        kwargs["gui"] = True  # tqdm writes nothing itself: display() below draws it
        super().__init__(*args, **kwargs)
        self._handle = None
        if not self.disable:
            from IPython.display import display

            self._handle = display(self._bundle(), raw=True, display_id=True)

    def _bundle(self):
        text = self.format_meter(**{**self.format_dict, "bar_format": "{l_bar}{r_bar}"})
        value = f' value="{self.n}" max="{self.total}"' if self.total else ""
        return {"text/plain": text,
                "text/html": f'<div class="workbook-progress"><progress{value} aria-label="{html.escape(self.desc or "progress")}">'
                             f'</progress> <span>{html.escape(text)}</span></div>'}

    def display(self, msg=None, pos=None):
        if self._handle is not None:
            self._handle.update(self._bundle(), raw=True)
        return True

    def close(self):
        if self.disable:
            return
        super().close()
        if self._handle is not None:  # done: nothing of the bar stays in the notebook
            self._handle.update({"text/plain": ""}, raw=True)
            self._handle = None

    def clear(self, *_, **__):
        pass


def progress(iterable=None, **kwargs):
    """A tqdm progress bar (same arguments): in a notebook a :class:`NotebookBar`, elsewhere tqdm's text bar.
    ``TQDM_DISABLE=1`` turns it off even where the caller passes ``disable=False`` (tqdm lets an argument win)."""
    if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
        kwargs["disable"] = True
    return (NotebookBar if _in_a_notebook() else std_tqdm)(iterable, **kwargs)
