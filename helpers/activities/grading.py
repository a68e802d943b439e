"""The activities as an nbgrader assignment: each notebook's ``check_activity_N(...)`` cell is an autograded test cell.

One home for what the notebooks' check cells carry (``tools/refresh_notebooks.py`` writes it into them, and the
tests read it): the cell's nbgrader metadata (a locked grade cell worth ``POINTS[N]``, id
``activity_N_check``) and the ``points=`` its call passes, so that the cell's result is the
:class:`~helpers.activities.feedback.Score` nbgrader reads as partial credit. The activity cells above the
checks stay ordinary cells: nbgrader would replace a solution cell without ``### BEGIN SOLUTION`` markers by
``raise NotImplementedError()``, and the workbook's cells hold the scaffold students fill in, not the answers
(those are in ``notebooks/solutions/``).
"""
import ast
import re

#: Points per activity: one per check its checker makes (activity 4: one per list of messages classified).
POINTS = {1: 5, 2: 10, 3: 3, 4: 2}
#: nbgrader's cell metadata format.
NBGRADER_SCHEMA = 3

_CALL = re.compile(r"\bcheck_activity_(\d)\(")


def grade_id(activity) -> str:
    return f"activity_{activity}_check"


def check_cell_activity(source):
    """The activity a code cell checks (it calls ``check_activity_N(``), or None."""
    found = {int(n) for n in _CALL.findall(source)}
    return found.pop() if len(found) == 1 else None


def nbgrader_metadata(activity) -> dict:
    """A locked, autograded test cell worth ``POINTS[activity]``."""
    return {"grade": True, "grade_id": grade_id(activity), "locked": True, "points": POINTS[activity],
            "schema_version": NBGRADER_SCHEMA, "solution": False, "task": False}


def graded_source(source, activity) -> str:
    """The check cell's text with ``points=POINTS[activity]`` in its call and no trailing ";" (nbgrader reads the
    cell's result, which a ";" hides). Applying it twice changes nothing."""
    text = source.rstrip().removesuffix(";").rstrip()
    try:
        last = ast.parse(text).body[-1]
    except (SyntaxError, IndexError):
        last = None
    call = last.value if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) else None
    if call is None or getattr(call.func, "id", None) != f"check_activity_{activity}":
        raise ValueError(f"the check cell of activity {activity} does not end with its check_activity_{activity}(...) "
                         "call: put the call last")
    if re.search(r"\bpoints=\d+(\.\d+)?\)$", text):
        return re.sub(r"\bpoints=\d+(\.\d+)?\)$", f"points={POINTS[activity]})", text)
    return text[:-1].rstrip().rstrip(",") + f", points={POINTS[activity]})"
