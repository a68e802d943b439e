"""Friendlier failures in a notebook: a hint with the usual cause, printed above IPython's own traceback.

* ``NameError``: a name a cell uses was made by a cell above it that has not run in this kernel (the
  kernel was restarted, or the cells ran out of order).
* ``KeyboardInterrupt`` (Kernel ▸ Interrupt, or ■): the cell stopped where it was; no long traceback
  from inside PyTorch, just where it stopped and what to do.
"""
import sys

_HINTS = {
    NameError: ("💡 A name this cell uses is not defined yet. It is made by a cell above, which has not run in "
                "this kernel (after a restart, or when cells run out of order): run the cells above first "
                "(Run ▸ Run All Above Selected Cell), then this one."),
}


STOPPED = ("⏹ Stopped: you interrupted this cell, and it stopped where it was. Whatever it changed so far stays "
           "(a model trained part of the way keeps those steps). Run the cell again to start it over.")


def _handler(shell, etype, value, tb, tb_offset=None):
    if issubclass(etype, KeyboardInterrupt):  # reported as the cell's error (so Run All stops), in one line
        return shell._showtraceback(etype, value, [STOPPED])
    hint = next((text for kind, text in _HINTS.items() if issubclass(etype, kind)), None)
    if hint:
        print(hint, file=sys.stderr)
    return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


def install_notebook_help(shell=None):
    """Register the hints with the running IPython kernel (nothing happens outside IPython). Idempotent."""
    if shell is None:
        try:
            shell = get_ipython()  # noqa: F821 (defined inside IPython only)
        except NameError:
            return False
    if shell is None or getattr(shell, "_workbook_help", False):
        return False
    shell.set_custom_exc((NameError, KeyboardInterrupt), _handler)
    shell._workbook_help = True
    return True
