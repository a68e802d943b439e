"""Launching the workbook on Google Colab and Binder: the notebooks' first cells, and Colab's installer.

Every notebook starts (after its title) with a badge line ("Open in Colab", "launch Binder") and a setup cell.
The setup cell does nothing where the workbook is installed (``import helpers`` works: ``bash workbook.sh``,
Binder, a JupyterHub). On Colab it clones the repository (``WORKBOOK_REPO``; the variable of that name
overrides it), runs this file as a script, and continues in the clone's ``notebooks/`` folder.

As a script (standard library only: nothing else is installed yet), this file installs ``requirements.txt``
into Colab's Python, except

* PyTorch: Colab's own build (with its GPU support) is kept, and pinned while the rest installs, so that no
  package replaces it. When its version is outside what ``requirements.txt`` accepts (the versions CI tests),
  it says so in one line;
* the JupyterLab-only packages (JupyterLab, its slides and widget extensions, nbval): Colab has its own
  front end, and replacing its ipywidgets or Jupyter server packages can break it,

and then the workbook itself (editable, without dependencies). ``tools/refresh_notebooks.py`` writes the
cells below into every notebook; this file is their one home.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The workbook's public repository. A PLACEHOLDER: set it to the real address before publishing, then run
#: ``python tools/refresh_notebooks.py --slides-only notebooks/*.ipynb`` to rewrite the badges and setup cells.
WORKBOOK_REPO = "https://github.com/OWNER/spam-workbook"
BRANCH = "main"
ENV_REPO = "WORKBOOK_REPO"
#: Not installed on Colab (see above); torch is kept as Colab has it.
KEPT_FROM_COLAB = {"torch", "jupyterlab", "jupyterlab-rise", "nbval", "ipywidgets", "jupyterlab-widgets",
                   "widgetsnbextension"}
SETUP_TAG, BADGE_TAG = "workbook-setup", "workbook-launch-badges"


def _github_path():
    return WORKBOOK_REPO.removeprefix("https://github.com/").removesuffix(".git")


def badges(notebook_name) -> str:
    """The badge line of ``notebooks/<notebook_name>``: open it on Colab, or launch it on Binder."""
    colab = f"https://colab.research.google.com/github/{_github_path()}/blob/{BRANCH}/notebooks/{notebook_name}"
    binder = f"https://mybinder.org/v2/gh/{_github_path()}/{BRANCH}?labpath=notebooks%2F{notebook_name}"
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
            f"[![Binder](https://mybinder.org/badge_logo.svg)]({binder})")


def nbgitpuller_link(hub, notebook="01_dataset.ipynb") -> str:
    """The link that gives each student of a JupyterHub at ``hub`` a copy of the notebooks (nbgitpuller),
    opening ``notebook`` in JupyterLab (docs/hub.md)."""
    from urllib.parse import quote, urlencode

    folder = _github_path().split("/")[-1]
    query = urlencode({"repo": WORKBOOK_REPO, "branch": BRANCH, "urlpath": f"lab/tree/{folder}/notebooks/{notebook}"},
                      quote_via=quote, safe="")
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


SETUP_CELL = f'''\
# Setup: nothing to do where the workbook is installed. On Google Colab this fetches and installs it
# (about a minute), keeping Colab's own PyTorch, then works in its notebooks folder.
import importlib, importlib.util, os, subprocess, sys

if importlib.util.find_spec("helpers") is None:
    try:
        import google.colab  # noqa: F401  (only Colab has it)
    except ImportError:
        raise ModuleNotFoundError("the workbook is not installed here: run `bash workbook.sh lab` in its folder") from None
    _workbook = os.path.abspath("spam-workbook")
    if not os.path.isdir(_workbook):
        _repository = os.environ.get("{ENV_REPO}", "{WORKBOOK_REPO}")
        subprocess.run(["git", "clone", "--depth", "1", _repository, _workbook], check=True)
    subprocess.run([sys.executable, os.path.join(_workbook, "helpers", "classroom", "colab.py")], check=True)
    sys.path.insert(0, _workbook)
    os.chdir(os.path.join(_workbook, "notebooks"))
    importlib.invalidate_caches()'''

#: Notebook 1's cell after the setup: how many threads PyTorch uses here, and why (helpers/classroom/threads.py).
THREADS_CELL = '''\
from helpers import THREADS_NOTE

print(THREADS_NOTE)  # on a shared server: the CPUs this kernel may use, not the machine's cores'''
THREADS_TAG = "workbook-threads"


# --------------------------------------------------------------------------- the installer (run as a script)
def _release(version):
    """``"2.13.0+cu126"`` -> (2, 13, 0)."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def satisfies(version, spec):
    """Does ``version`` meet ``spec`` (comma-separated ``>=``, ``<``, ``==`` … clauses on release numbers)?"""
    have = _release(version)
    for clause in (c.strip() for c in spec.split(",") if c.strip()):
        op, wanted = re.match(r"(==|!=|>=|<=|>|<|~=)\s*(.+)", clause).groups()
        want = _release(wanted)
        padded = have[:len(want)] if op in ("==", "!=") else have
        ok = {"==": padded == want, "!=": padded != want, ">=": have >= want, "<=": have <= want, ">": have > want,
              "<": have < want, "~=": have >= want and have[:len(want) - 1] == want[:-1]}[op]
        if not ok:
            return False
    return True


def requirements(path):
    """``(torch's version spec, the other requirement lines)`` of ``requirements.txt``, without what Colab keeps
    (its own PyTorch, the JupyterLab-only packages) and without the workbook itself (``-e .``)."""
    torch_spec, others = "", []
    for line in Path(path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):  # "-e ." : installed after, without dependencies
            continue
        name = re.match(r"[A-Za-z0-9._-]+", line).group(0)
        normalized = re.sub(r"[-_.]+", "-", name).lower()
        if normalized == "torch":
            torch_spec = line[len(name):].strip()
        elif normalized not in KEPT_FROM_COLAB:
            others.append(line)
    return torch_spec, others


def install(root):
    """Install the workbook at ``root`` into this Python beside the PyTorch it has. Returns 0, or pip's status."""
    start = time.time()
    torch_spec, others = requirements(Path(root) / "requirements.txt")
    try:
        from importlib.metadata import version

        torch_version = version("torch")
    except Exception:  # no PyTorch at all (not Colab): install the one the workbook is tested with
        torch_version = None
        others.append(f"torch{torch_spec}")
    if torch_version and torch_spec and not satisfies(torch_version, torch_spec):
        print(f"Note: this PyTorch ({torch_version}) is not a version the workbook is tested with (torch{torch_spec}, "
              "requirements.txt); it is kept, and should work.")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
        if torch_version:  # nothing may replace the installed PyTorch
            pins.write(f"torch=={torch_version}\n")
    try:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        code = subprocess.run([*pip, *others, "-c", pins.name]).returncode
        if code == 0:
            code = subprocess.run([*pip, "--no-deps", "-e", str(root)]).returncode
    finally:
        os.unlink(pins.name)
    if code == 0:
        print(f"The workbook is installed ({time.time() - start:.0f} s), with PyTorch "
              f"{torch_version or 'as requirements.txt asks'}.")
    return code


if __name__ == "__main__":
    sys.exit(install(Path(__file__).resolve().parents[2]))
