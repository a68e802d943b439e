"""Friendlier failures in a notebook: a hint with the usual cause, printed above IPython's own traceback.

* ``NameError``: a name a cell uses was made by a cell above it that has not run in this kernel (the
  kernel was restarted, or the cells ran out of order); or by a cell you interrupted before it got there.
* ``WeightsError`` (no GPT-2 weights, for instance): its message alone, which says what to do.
* ``KeyboardInterrupt`` (Kernel ▸ Interrupt, or ■): the cell stopped where it was; no long traceback
  from inside PyTorch, just where it stopped and what to do. An interrupted training loop says at which
  step it stopped and hands back what it has: its five lists so far, under the names the cell assigns.

``import helpers`` installs them; so does every kernel's start once ``python -m helpers setup-jupyter`` has
configured the environment (``bash workbook.sh`` does), so they hold after a restart too.
"""
import ast
import sys
import traceback

from ..storage.progress import ipython_shell

_HINTS = {
    NameError: ("💡 A name this cell uses is not defined yet. It is made by a cell above, which has not run in "
                "this kernel (after a restart, or when cells run out of order): run the cells above first "
                "(Run ▸ Run All Above Selected Cell), then this one."),
}


STOPPED = ("⏹ Stopped: you interrupted this cell, and it stopped where it was. Whatever it changed so far stays "
           "(a model trained part of the way keeps those steps). Run the cell again to start it over.")


RUN = ("train_losses", "val_losses", "train_accs", "val_accs", "examples_seen")  # the loop's return value
LOOPS = ("train_classifier_simple", "train_classifier_fast")


def _stopped_training(tb):
    """The lecture loop's frame in an interrupt's traceback (``train_classifier_fast`` runs it too), or None."""
    frames = [frame for frame, _ in traceback.walk_tb(tb)
              if frame.f_code.co_name == "train_classifier_simple" and all(name in frame.f_locals for name in RUN)]
    return frames[-1] if frames else None


def _assigned_names(cell_source):
    """The names the cell assigns the loop's return value to (``a, b, c, d, e = train_classifier_simple(...)``)."""
    try:
        tree = ast.parse(cell_source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            target = node.targets[0]
            if name in LOOPS and isinstance(target, ast.Tuple) and len(target.elts) == len(RUN) \
                    and all(isinstance(element, ast.Name) for element in target.elts):
                return [element.id for element in target.elts]
    return None


def assigned_names(cell_source) -> set:
    """Every name a cell's code binds at its top level (assignments, loops, imports, definitions)."""
    try:
        tree = ast.parse(cell_source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _unmade_names(shell) -> set:
    """The names the cell now running would have made and has not (it stopped early)."""
    source = (shell.user_ns.get("_ih") or [""])[-1]
    return {name for name in assigned_names(source) if name not in shell.user_ns}


def _remember_interrupted_cell(shell):
    """The names an interrupted cell would have made and did not: a later NameError for one of them says so."""
    shell._workbook_interrupted = _unmade_names(shell)


def name_error_hint(shell, error) -> str:
    name, interrupted = getattr(error, "name", None), getattr(shell, "_workbook_interrupted", set())
    if name and name in interrupted:
        interrupted |= _unmade_names(shell)  # what this cell would have made is missing for the same reason
        return (f"💡 `{name}` was never made: a cell you interrupted stopped before it got there (or a cell that "
                "needed it could not run). Run the interrupted cell to the end, then the cells below it.")
    return _HINTS[NameError]


def stopped_training_message(shell, tb):
    """Where an interrupted training run stopped; its five lists so far go to the names the cell assigns
    them to (so the cells below work on the partial run), or to ``stopped_run``. None if no loop ran."""
    frame = _stopped_training(tb)
    if frame is None:
        return None
    f = frame.f_locals
    done = f.get("global_step", -1) + 1
    try:
        planned = f["num_epochs"] * len(f["train_loader"])
    except (KeyError, TypeError):  # a loader without a length
        planned = None
    run = tuple(f[name] for name in RUN)
    names = _assigned_names((shell.user_ns.get("_ih") or [""])[-1])
    so_far = (f"{len(run[0])} loss evaluation{'s' if len(run[0]) != 1 else ''}, the accuracy after {len(run[2])} "
              f"epoch{'s' if len(run[2]) != 1 else ''}")
    if names:
        shell.user_ns.update(zip(names, run))
        where = f"`{', '.join(names)}` hold the run so far ({so_far}); the rest of the cell did not run"
    else:
        shell.user_ns["stopped_run"] = run
        where = (f"`stopped_run` holds the run so far (train_losses, val_losses, train_accs, val_accs, "
                 f"examples_seen: {so_far})")
    epoch = f.get("epoch", 0) + 1
    return (f"⏹ Stopped at step {done}" + (f" of {planned}" if planned else "")
            + f" (epoch {epoch} of {f.get('num_epochs', '?')}): you interrupted the training. The model keeps "
            f"those {done} steps, and {where}. "
            "A checkpoint saved from it records it as stopped early. Running the cell again would train this "
            "model further: to start over, run the notebook again from the top.")


def _friendly_errors():
    """The workbook's own errors whose message is the whole story (what is wrong, what to do): no traceback."""
    from ..weights import WeightsError

    return (WeightsError,)


def _handler(shell, etype, value, tb, tb_offset=None):
    if issubclass(etype, KeyboardInterrupt):  # reported as the cell's error (so Run All stops), in one line
        message = stopped_training_message(shell, tb) or STOPPED
        _remember_interrupted_cell(shell)
        return shell._showtraceback(etype, value, [message])
    if issubclass(etype, _friendly_errors()):  # the message, first and alone (the cell still fails)
        return shell._showtraceback(etype, value, [f"❌ {etype.__name__}: {value}"])
    hint = name_error_hint(shell, value) if issubclass(etype, NameError) else None
    if hint:
        print(hint, file=sys.stderr)
    return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


def install_notebook_help(shell=None):
    """Register the hints with the running IPython kernel (nothing happens outside IPython). Idempotent."""
    shell = shell or ipython_shell()
    if shell is None or getattr(shell, "_workbook_help", False):
        return False
    shell.set_custom_exc((NameError, KeyboardInterrupt, *_friendly_errors()), _handler)
    shell._workbook_help = True
    return True


def load_ipython_extension(shell):
    """``%load_ext helpers.classroom.notebook``, or at every kernel's start once ``python -m helpers setup-jupyter``
    has run: the hints work from the first cell on, before any cell imports ``helpers`` (after a restart, say)."""
    install_notebook_help(shell)
