"""Project files that must agree with each other."""
import json
import re
import subprocess
import sys

import pytest

from helpers.storage.paths import PROJECT_ROOT


def requirement_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_environment_yml_lists_the_runtime_requirements():
    requirements = requirement_lines((PROJECT_ROOT / "requirements.txt").read_text())
    env = (PROJECT_ROOT / "environment.yml").read_text()
    pip_section = [m.group(1).strip() for m in re.finditer(r"^      - (.+)$", env, re.MULTILINE)]
    assert pip_section == requirements


def test_readme_test_command_is_what_ci_runs():
    readme = (PROJECT_ROOT / "README.md").read_text()
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "`bash workbook.sh test`" in readme and "`bash workbook.sh lab`" in readme
    assert "\nbash workbook.sh test\n" in ci and "\nbash workbook.sh lab " in ci
    assert "sms_spam_collection" not in ci  # CI stages nothing: the dataset ships in datasets/


def test_notebooks_have_no_stray_outputs():
    checker = PROJECT_ROOT.parent / "shared" / "tools" / "check_notebooks.py"
    if not checker.is_file():  # outside the course's layout the shared checker is not there
        pytest.skip("shared/tools/check_notebooks.py not found beside the project")
    result = subprocess.run([sys.executable, str(checker), str(PROJECT_ROOT / "notebooks")], capture_output=True, text=True)
    assert result.stdout == "" and result.returncode == 0


def test_notebooks_import_everything_from_helpers_directly():
    import json

    import helpers

    for notebook in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"]
                         if cell["cell_type"] == "code")
        assert not re.findall(r"^\s*(?:from|import) helpers\.\w+", code, re.MULTILINE), notebook.name
        for names in re.findall(r"^from helpers import \(([^)]*)\)", code, re.MULTILINE):
            missing = [name for name in re.findall(r"\w+", names) if not hasattr(helpers, name)]
            assert not missing, (notebook.name, missing)


# --------------------------------------------------------------------------- the package's layers
CORE = {"data", "tokenizer", "gpt", "weights", "classifier", "training", "metrics", "inference"}
#: What each layer may import from helpers: the lecture core sits on storage; every extra on the core.
ALLOWED = {  # settings (plain values) sit at the bottom, beside storage: every layer reads them
    "settings": {"settings"},
    "storage": {"storage"},
    "core": {"core", "storage", "settings"},
    "fast": {"core", "storage", "settings", "fast"},
    "figures": {"core", "storage", "settings", "figures"},
    "beyond": {"core", "storage", "settings", "beyond"},
    "activities": {"core", "storage", "settings", "activities"},
    "classroom": {"core", "storage", "settings", "fast", "figures", "classroom"},
}


def layer_of(parts):
    """The layer of a module given as path parts below helpers/ (``("fast", "engine")``, ``("gpt",)``)."""
    return "core" if len(parts) == 1 and parts[0] in CORE else parts[0]


def helpers_imports(path, source=None):
    """The helpers modules that ``path`` (or ``source`` placed there) imports, each as path parts below helpers/."""
    import ast

    package = path.relative_to(PROJECT_ROOT / "helpers").with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = base + tuple(node.module.split(".")) if node.module else base
            elif node.module and node.module.split(".")[0] == "helpers":
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            found += [target] if node.module else [target + (alias.name,) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [tuple(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "helpers"]
    return [parts for parts in found if parts]


def test_every_layer_imports_only_the_layers_below_it():
    modules = [p for p in sorted((PROJECT_ROOT / "helpers").rglob("*.py")) if p.name not in ("__init__.py", "__main__.py")]
    assert {layer_of(p.relative_to(PROJECT_ROOT / "helpers").with_suffix("").parts) for p in modules} == set(ALLOWED)
    wrong = []
    for path in modules:
        layer = layer_of(path.relative_to(PROJECT_ROOT / "helpers").with_suffix("").parts)
        for target in helpers_imports(path):
            if layer_of(target) not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(PROJECT_ROOT)} ({layer}) imports helpers.{'.'.join(target)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("line", ["from .fast.kernels import linear_gelu", "from .fast import engine",
                                  "import helpers.classroom.book", "from helpers.activities import check_activity_1"])
def test_the_layer_check_catches_a_core_module_importing_an_extra(line):
    """The check above can fail: a core module that imports an extra, in any spelling, is reported."""
    gpt = PROJECT_ROOT / "helpers" / "gpt.py"
    targets = helpers_imports(gpt, gpt.read_text() + "\n" + line + "\n")
    assert any(layer_of(target) not in ALLOWED["core"] for target in targets), targets


def test_the_lecture_classes_hold_no_engine_code():
    """No precision, engine, reading-rule or kernel logic inside the core; nothing patches the lecture's classes."""
    engine_words = re.compile(r"autocast|bfloat16|bf16|resolve_precision|precision=|mkldnn|_linear_pointwise|trunk|"
                              r"reading_rule|pooling")
    for name in sorted(CORE):
        source = (PROJECT_ROOT / "helpers" / f"{name}.py").read_text()
        assert not engine_words.findall(source), (name, engine_words.findall(source))
    for path in (PROJECT_ROOT / "helpers").rglob("*.py"):
        source = path.read_text()
        assert not re.search(r"\.__class__\s*=|MethodType|\.forward\s*=", source), path  # no patched classes


def test_the_notebooks_run_of_this_session_is_kept_with_its_outputs(request, executed_notebook):
    """nbval's run of a notebook is reused by the tests that need its outputs (each notebook executed once)."""
    import nbformat

    if "01_dataset.ipynb" not in request.config.workbook_executed:
        pytest.skip("notebooks/01_dataset.ipynb was not run by nbval in this session")
    executed = nbformat.read(executed_notebook("01_dataset.ipynb"), as_version=4)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.outputs for cell in code if cell.source.startswith("show_source("))  # the file holds none
    stored = [cell for cell in nbformat.read(PROJECT_ROOT / "notebooks" / "01_dataset.ipynb", as_version=4).cells
              if cell.cell_type == "code"]
    assert sum(bool(cell.outputs) for cell in code) > sum(bool(cell.outputs) for cell in stored)


def test_the_notebook_checker_reports_stray_outputs_and_passes_clean_notebooks(tmp_path):
    import json
    import subprocess
    import sys

    tool = PROJECT_ROOT / "tools" / "check_notebooks.py"
    clean = subprocess.run([sys.executable, str(tool), str(PROJECT_ROOT / "notebooks")], capture_output=True, text=True)
    assert clean.returncode == 0 and clean.stdout == "", clean.stdout
    notebook = json.loads((PROJECT_ROOT / "notebooks" / "02_dataloaders.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code" and "nbval-check-output" not in
                c["metadata"].get("tags", []))
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["left over\n"]}]
    cell["execution_count"] = 3
    (tmp_path / "02_dataloaders.ipynb").write_text(json.dumps(notebook))
    dirty = subprocess.run([sys.executable, str(tool), str(tmp_path)], capture_output=True, text=True)
    assert dirty.returncode == 1 and "keeps 1 output(s) but is not tagged nbval-check-output" in dirty.stdout
    assert "keeps execution count 3" in dirty.stdout


def test_the_docs_name_only_files_that_exist():
    import re

    for doc in ("README.md", "CONTRIBUTING.md", "docs/teaching.md", "docs/adapting.md", "docs/hub.md",
                "benchmarks/README.md"):
        text = (PROJECT_ROOT / doc).read_text()
        assert "../shared" not in text, doc
        for name in re.findall(r"`((?:docs|tools|benchmarks|notebooks|helpers|tests|datasets)/[\w./-]+)`", text):
            if "*" in name or "NN" in name or "<" in name:
                continue
            assert (PROJECT_ROOT / name.rstrip("/")).exists(), f"{doc} names {name}, which does not exist"


def test_every_time_is_stated_once_in_docs_time_budget_and_rendered_from_it():
    """One number for one fact: each notebook's first cell and README's table are rendered from
    docs/time_budget.json (tools/time_budget.py --write), one line per audience."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("time_budget", PROJECT_ROOT / "tools" / "time_budget.py")
    time_budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(time_budget)
    budget = time_budget.load_budget()
    notebooks = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(budget["notebooks"]) == [path.name[:2] for path in notebooks]
    for path in notebooks:
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        block = time_budget.notebook_time_block(path.name[:2], budget)
        assert block in first, f"{path.name}: its time lines are not docs/time_budget.json's (tools/time_budget.py --write)"
        assert ["laptop CPU", "test model", "instructor mode"] == [re.search(r"(laptop CPU|test model|instructor mode)",
                                                                             line)[1] for line in block.splitlines()[1:]]
    assert time_budget.readme_time_table(budget) in (PROJECT_ROOT / "README.md").read_text()
    for path in notebooks:  # no other time in a notebook's prose contradicts them: they refer to the top
        for cell in json.loads(path.read_text())["cells"][1:]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                assert not re.search(r"\babout (ten|\d+) min", text), f"{path.name}: a time stated again: {text[:80]}"


def test_every_notebook_has_one_h1_and_no_skipped_heading_levels():
    """Headings a screen reader can navigate (WCAG 2.1 AA, 1.3.1): one H1, then levels that never skip."""
    for path in sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        levels = []
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                in_code = False
                for line in "".join(cell["source"]).splitlines():
                    in_code ^= line.startswith("```")
                    heading = re.match(r"(#{1,6}) ", line)
                    if heading and not in_code:
                        levels.append((len(heading[1]), line))
        assert levels and levels[0][0] == 1 and [level for level, _ in levels].count(1) == 1, path.name
        for (before, _), (level, line) in zip(levels, levels[1:]):
            assert level <= before + 1, f"{path.name}: {line!r} skips a level after an H{before}"
