"""Binder and Colab: the launch cells every notebook starts with, and Colab's installer (helpers/classroom/colab.py)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers.classroom.colab import (
    BADGE_TAG,
    KEPT_FROM_COLAB,
    SETUP_CELL,
    SETUP_TAG,
    WORKBOOK_REPO,
    badges,
    nbgitpuller_link,
    requirements,
    satisfies,
)
from helpers.storage.paths import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def tagged(notebook, tag):
    cells = json.loads(notebook.read_text())["cells"]
    return [(i, cell) for i, cell in enumerate(cells) if tag in cell.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_the_badges_and_the_setup_cell_after_its_title(notebook):
    [(badge_at, badge)] = tagged(notebook, BADGE_TAG)
    [(setup_at, setup)] = tagged(notebook, SETUP_TAG)
    assert (badge_at, setup_at) == (1, 2)
    assert "".join(badge["source"]) == badges(notebook.name)
    assert "".join(setup["source"]) == SETUP_CELL, "run python tools/refresh_notebooks.py --slides-only notebooks/*.ipynb"
    assert f"colab.research.google.com/github/{WORKBOOK_REPO.removeprefix('https://github.com/')}/blob/main/notebooks/" \
           f"{notebook.name}" in badges(notebook.name)


def test_the_nbgitpuller_link_is_the_one_docs_hub_md_gives():
    from urllib.parse import parse_qs, urlsplit

    link = nbgitpuller_link("https://hub.example.org/")
    parts = urlsplit(link)
    assert parts.path == "/hub/user-redirect/git-pull"
    assert parse_qs(parts.query) == {"repo": [WORKBOOK_REPO], "branch": ["main"],
                                     "urlpath": ["lab/tree/spam-workbook/notebooks/01_dataset.ipynb"]}
    assert link.replace("https://hub.example.org", "https://HUB") in (PROJECT_ROOT / "docs" / "hub.md").read_text()


def test_the_setup_cell_does_nothing_where_the_workbook_is_installed(tmp_path):
    """Here (as with bash workbook.sh, Binder or a hub) it neither clones nor installs, and prints nothing."""
    result = subprocess.run([sys.executable, "-c", SETUP_CELL + "\nprint(os.getcwd())"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path) and not list(tmp_path.iterdir())


def test_the_setup_cell_elsewhere_says_how_to_install(tmp_path):
    """In a Python without the workbook and outside Colab: one error saying what to run."""
    result = subprocess.run([sys.executable, "-I", "-S", "-c", SETUP_CELL], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and "run `bash workbook.sh lab` in its folder" in result.stderr


def test_the_accepted_pytorch_versions_are_requirements_txts():
    torch_spec, others = requirements(PROJECT_ROOT / "requirements.txt")
    assert torch_spec == ">=2.13,<2.14"
    import torch

    assert satisfies(torch.__version__, torch_spec)  # what CI tests is what the workbook accepts
    names = {re.match(r"[A-Za-z0-9._-]+", line).group(0).lower().replace("_", "-") for line in others}
    assert not names & KEPT_FROM_COLAB and {"tiktoken", "pandas", "safetensors", "scikit-learn"} <= names
    assert not any(line.startswith("-") for line in others)
    for version, ok in (("2.13.0+cpu", True), ("2.13.1+cu126", True), ("2.9.0+cu126", False), ("2.14.0", False),
                        ("2.12.1", False)):
        assert satisfies(version, torch_spec) is ok, version


def test_binder_installs_the_requirements_with_cpu_pytorch():
    """repo2docker reads binder/: its requirements.txt pulls in the workbook's own list (one statement of the
    versions) with PyTorch's CPU index beside PyPI, and runtime.txt picks the Python CI uses."""
    lines = [line.strip() for line in (PROJECT_ROOT / "binder" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["--extra-index-url https://download.pytorch.org/whl/cpu", "-r ../requirements.txt"]
    assert (PROJECT_ROOT / "binder" / "runtime.txt").read_text().strip() == \
        f"python-{sys.version_info.major}.{sys.version_info.minor}"


def files_of(distribution, site):
    """``{path: sha256}`` of every file an installed distribution lists in its RECORD."""
    record = next(Path(site).glob(f"{distribution}-*.dist-info")) / "RECORD"
    hashes = {}
    for line in record.read_text().splitlines():
        path = line.split(",")[0]
        if (Path(site) / path).is_file():
            hashes[path] = hashlib.sha256((Path(site) / path).read_bytes()).hexdigest()
    return record.parent.name, hashes


def working_tree_repository(folder):
    """A git repository holding this working tree as it is now (what would be pushed), for the cell to clone."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (PROJECT_ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, folder / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@invalid", "-C", str(folder)]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "the workbook"]):
        subprocess.run([*git, *command], check=True, capture_output=True)
    return folder


@pytest.mark.slow
def test_on_an_imitated_colab_the_setup_cell_installs_the_workbook_and_keeps_its_pytorch(tmp_path):
    """A fresh virtual environment like Colab's: PyTorch and ipywidgets preinstalled, a google.colab module. The
    setup cell clones the workbook (this working tree, via WORKBOOK_REPO), installs it, and leaves PyTorch's
    files exactly as they were; afterwards `import helpers` works, and running the cell again does nothing."""
    if not (PROJECT_ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("the imitated Colab clones this repository: it needs git and a git checkout")
    import torch

    repository = working_tree_repository(tmp_path / "published")

    venv = tmp_path / "colab-python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"torch=={torch.__version__.split('+')[0]}",
                                "ipywidgets", "ipython"], capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-2000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s module."""\n')
    torch_before = files_of("torch", site)

    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    cell = SETUP_CELL + "\nimport helpers, torch\nprint('RESULT', helpers.__file__, torch.__version__, os.getcwd())"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WORKBOOK_REPO": f"file://{repository}",
           "WORKBOOK_TEST_MODEL": "1", **{k: v for k, v in os.environ.items() if k.startswith("PIP_")}}
    run = subprocess.run([str(python), "-c", cell], cwd=content, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    result = next(line for line in run.stdout.splitlines() if line.startswith("RESULT")).split()
    clone = content / "spam-workbook"
    assert result[1] == str(clone / "helpers" / "__init__.py")
    assert result[2] == torch.__version__ and result[3] == str(clone / "notebooks")
    assert "The workbook is installed" in run.stdout and "is not a version the workbook is tested with" not in run.stdout
    assert files_of("torch", site) == torch_before  # the same distribution, every file unchanged

    again = subprocess.run([str(python), "-c", cell], cwd=content, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "The workbook is installed" not in again.stdout  # installed now: the cell does nothing
    assert again.stdout.split()[-3] == str(clone / "helpers" / "__init__.py")
