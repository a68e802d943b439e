"""What every activity checker shares: the report, "not attempted yet", the student's own names.

Each ``check_activity_N`` prints specific feedback and returns True when everything is right; given
``points=P`` (the notebooks' check cells, graded by nbgrader) it returns a :class:`Score` instead: P times the
share of its checks that passed. They write nothing to stderr (nbgrader gives 0 points for any stderr).
They never raise for the student's answers: an untouched cell (answers still ``...``) just gets
"not attempted yet", and a wrong answer gets a hint that names the usual mistake it matches.
Messages use the student's own variable names: the keyword names are the notebook's variables,
and a value the notebook holds under another name is reported under that name.
"""
import ast
import inspect
import textwrap

import numpy as np
import torch


class Score(float):
    """The points a check earned, for nbgrader: a number (nbgrader reads a check cell's result as partial
    credit, docs/teaching.md), true when every check passed (as ``check_activity_N`` returns without points)."""

    def __new__(cls, earned, points, all_ok):
        score = super().__new__(cls, earned)
        score.points, score.all_ok = points, all_ok
        return score

    def __bool__(self):
        return self.all_ok

    def __repr__(self):  # nbgrader reads the text form as a number: nothing else in it
        return repr(float(self))

    def _repr_markdown_(self):  # what JupyterLab shows under the feedback
        return f"**{float(self):g} of {self.points:g} points**"


class Feedback:
    def __init__(self, title, names=None, done="🎉 All correct!"):
        self.title, self.lines, self.all_ok, self.untouched = title, [], True, []
        self.names, self.done = names or {}, done
        self.passed, self.failed = 0, 0  # checks: each answer is checked once, right or not

    def name(self, key):
        return self.names.get(key, key)

    def skip(self, key):
        self.untouched.append(self.name(key))
        self.all_ok = False
        self.failed += 1

    def ok(self, text):
        self.lines.append(f"  ✅ {text}")
        self.passed += 1

    def wrong(self, text):
        self.lines.append(f"  ❌ {text}")
        self.all_ok = False
        self.failed += 1

    def note(self, text):
        self.lines.append(f"     {text}")

    def report(self, points=None):
        """Print the feedback; return True when all is right, or with ``points`` the :class:`Score`: ``points``
        times the share of the checks that passed (all of them when all is right)."""
        print(self.title)
        if self.untouched:
            print(f"  ⏳ not attempted yet: {', '.join(self.untouched)} (replace the ... with your code)")
        for line in self.lines:
            print(line)
        if self.all_ok and self.done:
            print(f"  {self.done}")
        if points is None:
            return self.all_ok
        checks = self.passed + self.failed
        earned = points if self.all_ok else round(points * self.passed / checks, 2) if checks else 0.0
        return Score(earned, points, self.all_ok)


def untouched(value):
    return value is Ellipsis


def caller_names(frame, answers):
    """``{keyword: name}``: the name under which the caller holds each answer, when it is unambiguous."""
    names = {}
    if frame is None or frame.f_locals is not frame.f_globals:
        return names  # only a notebook cell's (module-level) names are the student's
    scope = frame.f_globals
    for key, value in answers.items():
        if value is None or untouched(value) or isinstance(value, (bool, int, float, str)):
            continue  # small values are shared by many names: keep the keyword
        holders = [n for n, v in scope.items() if v is value and not n.startswith("_")]
        if key not in holders and len(holders) == 1:
            names[key] = holders[0]
    return names


def fmt(number):
    """A number for reading: whole numbers as such, others to 4 significant digits."""
    number = float(number)
    return f"{number:.0f}" if number.is_integer() else f"{number:.4g}"


def as_number(fb, key, value):
    """The answer as a float, or None (reported) when it is untouched or not a number."""
    if untouched(value):
        fb.skip(key)
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (str, bytes, bool)) or value is None:
        fb.wrong(f"{fb.name(key)} should be a number, got {type(value).__name__}: {value!r}")
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        fb.wrong(f"{fb.name(key)} should be a number, got {type(value).__name__}: {value!r}")
        return None




FAILED = object()


def is_untouched_function(fn):
    """True when the body of ``fn`` is still only ``...`` (with comments or a docstring)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    return all(isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
               and (stmt.value.value is Ellipsis or isinstance(stmt.value.value, str)) for stmt in node.body)


def call(fb, label, fn, *args, **kwargs):
    """Call the student's code; ``FAILED`` (reported) if it raises. Never lets an exception out."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # the student's code: report, never crash the notebook
        left = " (is a ... still left in your code?)" if "ellipsis" in str(exc) else ""
        fb.wrong(f"{label} raised {type(exc).__name__}: {exc}{left}")
        return FAILED



def number(value):
    """A returned value as a float (Python, NumPy or one-element tensor), else None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return None

