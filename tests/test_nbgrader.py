"""The instructor's gradebook: nbgrader (from PyPI) autogrades the four activities' check cells.

The notebooks 01, 02, 04 and 06 form one nbgrader assignment. ``nbgrader generate_assignment`` makes the
student version; three students submit it (every activity right; every activity untouched; every activity with
one typical mistake) and ``nbgrader autograde`` scores each check cell: full points, 0, and the points the
checker's verdict gives (its share of checks passed, helpers/activities/grading.py). It grades as docs/teaching.md
tells instructors to: the test model, one thread per grader, a cell timeout of 120 s (three graders at once).

nbgrader lives in a virtual environment of its own (.venv/nbgrader/, made on first use) that sees the
workbook's packages through a .pth file: so its JupyterLab extensions never load in the workbook's JupyterLab,
while its kernel imports the workbook as a student's does.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from helpers.activities.grading import POINTS, check_cell_activity, grade_id, graded_source, nbgrader_metadata
from helpers.storage.paths import PROJECT_ROOT

NBGRADER_ENV = PROJECT_ROOT / ".venv" / "nbgrader"
NOTEBOOKS = {1: "01_dataset.ipynb", 2: "02_dataloaders.ipynb", 3: "04_training.ipynb", 4: "06_inference.ipynb"}
SOLUTIONS = {n: (PROJECT_ROOT / "notebooks" / "solutions" / f"activity_{n}.py").read_text() for n in NOTEBOOKS}
#: One typical mistake per activity, made in the solution, and the points it keeps (a share of the checks).
MISTAKES = {
    1: (("imbalance_ratio = ham_count / spam_count", "imbalance_ratio = spam_count / ham_count"), 4.0),  # 4 of 5
    2: (("token_ids += [self.pad_token_id] * (self.max_length - len(token_ids))",
         "token_ids = [self.pad_token_id] * (self.max_length - len(token_ids)) + token_ids"), 9.0),  # padded left
    3: (("return total_loss / num_batches", "return total_loss / len(data_loader)"), 2.0),  # 2 of 3 functions
    4: (("my_spam = [", 'my_spam = "WIN now"\nnot_a_list = ['), 1.0),  # one of the two lists is a string
}
STUDENTS = ("right", "untouched", "mistakes")


def nbgrader_env():
    """nbgrader in .venv/nbgrader/, seeing the workbook's packages and the workbook itself (one .pth file)."""
    python = NBGRADER_ENV / "bin" / "python"
    if not (NBGRADER_ENV / "bin" / "nbgrader").exists():
        subprocess.run([sys.executable, "-m", "venv", str(NBGRADER_ENV)], check=True)
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        Path(site, "workbook.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n{PROJECT_ROOT}\n")
        result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "nbgrader"], capture_output=True,
                                text=True, timeout=600)
        if result.returncode == 0:  # nbgrader runs the `alembic` command: this environment's own, not the workbook's
            result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed",
                                     "alembic"], capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            shutil.rmtree(NBGRADER_ENV, ignore_errors=True)
            pytest.fail(f"could not install nbgrader from PyPI:\n{result.stderr[-2000:]}")
    return NBGRADER_ENV / "bin"


def activity_cell(nb, activity):
    """The cell a student writes activity ``activity`` in: the code cell just above its check cell."""
    check = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id(activity))
    return next(c for c in reversed(nb.cells[:check]) if c.cell_type == "code")


def submission(released, activity, student):
    nb = nbformat.read(released, as_version=4)
    if student != "untouched":
        code = SOLUTIONS[activity]
        if student == "mistakes":
            (old, new), _ = MISTAKES[activity]
            assert old in code, f"the mistake of activity {activity} no longer fits its solution"
            code = code.replace(old, new)
        activity_cell(nb, activity).source = code
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    bin_dir = nbgrader_env()
    course = tmp_path_factory.mktemp("course")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa\n"
        "c.CourseDirectory.course_id = 'spam-workbook'\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.Execute.timeout = 120  # per cell, as docs/teaching.md advises when grading several at once\n")
    source = course / "source" / "workbook"
    source.mkdir(parents=True)
    for name in NOTEBOOKS.values():
        shutil.copy(PROJECT_ROOT / "notebooks" / name, source / name)
    env = {**os.environ, "WORKBOOK_TEST_MODEL": "1", "WORKBOOK_THREADS": "1", "TQDM_DISABLE": "1",
           "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def nbgrader(*args, cwd=course):  # the grader's data folder is the course's: notebook 6 reads notebook 4's model
        return subprocess.Popen([str(bin_dir / "nbgrader"), *args], cwd=cwd, env={**env, "WORKBOOK_DATA_DIR": str(cwd / "data")},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finished(process, what):
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, f"nbgrader {what} failed:\n{output[-6000:]}"

    finished(nbgrader("generate_assignment", "workbook", "--force"), "generate_assignment")
    running = {}
    for student in STUDENTS:  # each in a copy of the course (a gradebook each), graded at the same time
        copy = course.parent / f"{course.name}-{student}"
        shutil.copytree(course, copy)
        (copy / "nbgrader_config.py").write_text((course / "nbgrader_config.py").read_text().replace(str(course), str(copy)))
        folder = copy / "submitted" / student / "workbook"
        folder.mkdir(parents=True)
        for activity, name in NOTEBOOKS.items():
            nbformat.write(submission(course / "release" / "workbook" / name, activity, student), folder / name)
        running[student] = (copy, nbgrader("autograde", "workbook", "--create", "--force", cwd=copy))
    scores = {}
    for student, (copy, process) in running.items():
        finished(process, f"autograde ({student})")
        report = subprocess.run([str(bin_dir / "python"), "-c", SCORES], cwd=copy, env=env, capture_output=True,
                                text=True, check=True)
        scores |= json.loads(report.stdout)
    return course, scores


SCORES = """
import json
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
api = NbGraderAPI()
scores = {}
with Gradebook(api.coursedir.db_url) as gradebook:
    for submission in gradebook.assignment_submissions("workbook"):
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                scores.setdefault(submission.student.id, {})[grade.cell.name] = [grade.score, grade.max_score]
print(json.dumps(scores))
"""


@pytest.mark.slow
def test_generate_assignment_makes_the_student_version(graded):
    course, _ = graded
    for activity, name in NOTEBOOKS.items():
        released = nbformat.read(course / "release" / "workbook" / name, as_version=4)
        check = next(c for c in released.cells if c.metadata.get("nbgrader", {}).get("grade"))
        assert check.metadata["nbgrader"]["grade_id"] == grade_id(activity)
        assert check.metadata["nbgrader"]["points"] == POINTS[activity]
        assert check.metadata.get("editable") is False and check.metadata.get("deletable") is False  # locked
        assert "..." in activity_cell(released, activity).source  # the scaffold, as the workbook has it
        source = nbformat.read(PROJECT_ROOT / "notebooks" / name, as_version=4)
        assert [c.source for c in released.cells] == [c.source for c in source.cells]


@pytest.mark.slow
def test_a_right_submission_gets_full_points(graded):
    _, scores = graded
    assert scores["right"] == {grade_id(n): [POINTS[n], POINTS[n]] for n in NOTEBOOKS}


@pytest.mark.slow
def test_an_untouched_submission_gets_nothing(graded):
    _, scores = graded
    assert scores["untouched"] == {grade_id(n): [0.0, POINTS[n]] for n in NOTEBOOKS}


@pytest.mark.slow
def test_a_typical_mistake_keeps_the_share_of_checks_it_passes(graded):
    _, scores = graded
    assert scores["mistakes"] == {grade_id(n): [MISTAKES[n][1], POINTS[n]] for n in NOTEBOOKS}


# --------------------------------------------------------------------------- without nbgrader
@pytest.mark.parametrize("activity", sorted(NOTEBOOKS))
def test_each_check_cell_is_an_autograded_test_cell(activity):
    nb = nbformat.read(PROJECT_ROOT / "notebooks" / NOTEBOOKS[activity], as_version=4)
    graded = [c for c in nb.cells if "nbgrader" in c.metadata]
    assert len(graded) == 1 and graded[0].metadata["nbgrader"] == nbgrader_metadata(activity)
    assert check_cell_activity(graded[0].source) == activity
    assert graded[0].source == graded_source(graded[0].source, activity)  # as the refresh tool writes it
    assert graded[0].source.rstrip().endswith(f"points={POINTS[activity]})")  # its result is the score, not hidden


def test_graded_source_adds_the_points_once():
    cell = "from helpers import check_activity_1\n\ncheck_activity_1(df, ham_count=ham_count,\n                 my_splits=my_splits);"
    graded = graded_source(cell, 1)
    assert graded.endswith("my_splits=my_splits, points=5)") and graded_source(graded, 1) == graded
    with pytest.raises(ValueError, match="put the call last"):
        graded_source("check_activity_1(df)\nprint('done')", 1)


def test_the_score_is_what_nbgrader_reads_and_true_only_when_all_is_right(staged_zip, tmp_path, capsys):
    """nbgrader reads a test cell's result as partial credit when its text is a number (nbgrader.utils.determine_grade);
    the checkers' feedback goes to stdout only: any stderr would make it 0."""
    from helpers import check_activity_1, download_sms_spam_dataset, load_sms_spam, random_split
    from helpers.activities.feedback import Score

    df = load_sms_spam(download_sms_spam_dataset(staged_zip, tmp_path))
    counts = df["Label"].value_counts()
    spam = df[df["Label"] == "spam"]
    balanced = __import__("pandas").concat([df[df["Label"] == "ham"].sample(n=len(spam), random_state=123), spam])
    right = dict(ham_count=counts["ham"], spam_count=counts["spam"], imbalance_ratio=counts["ham"] / counts["spam"],
                 my_balanced_df=balanced, my_splits=random_split(balanced, 0.7, 0.1))
    score = check_activity_1(df, **right, points=5)
    assert isinstance(score, Score) and score == 5.0 and bool(score) and repr(score) == "5.0"
    assert score._repr_markdown_() == "**5 of 5 points**"
    wrong = check_activity_1(df, **{**right, "imbalance_ratio": counts["spam"] / counts["ham"]}, points=5)
    assert wrong == 4.0 and not wrong
    assert check_activity_1(df, points=5) == 0.0
    assert check_activity_1(df, **right) is True  # without points: True or False, as before
    assert capsys.readouterr().err == ""
