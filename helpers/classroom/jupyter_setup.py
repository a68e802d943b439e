"""``python -m helpers setup-jupyter``: the workbook's settings for the Jupyter it runs in, written into that
environment (``sys.prefix``: the ``.venv`` that ``workbook.sh`` makes, a conda environment, a hub's image).

1. ``etc/ipython/ipython_kernel_config.py``: every kernel loads the notebook help when it starts, so a cell run
   out of order after a restart gets "run the cells above first", before any cell has imported ``helpers``.
2. ``share/jupyter/lab/settings/overrides.json``: RISE's one-key shortcuts (W: overview, T: notes, S, Q, …) do
   not fire while you type into a text box on a slide (activity 4's checker). JupyterLab's own shortcuts
   already skip a focused text box (selector ``:not(.jp-mod-readWrite)``); RISE's get the same condition.
3. ``etc/jupyter/jupyter_nbconvert_config.json``: ``jupyter nbconvert --to html`` writes the workbook's
   accessible HTML (nbconvert's "lab" template with ``notebooks/rise.css``: WCAG 2.1 AA contrast).

Each file is merged with what is there (other settings are kept) and written atomically; running it again
changes nothing. ``bash workbook.sh`` runs it on every start.
"""
import json
import sys
from pathlib import Path

from ..storage.files import write_atomically
from ..storage.paths import PROJECT_ROOT, StorageError, display_path

EXTENSION = "helpers.classroom.notebook"
KERNEL_MARK = "# --- the spam-classification workbook (python -m helpers setup-jupyter) ---"
KERNEL_BLOCK = (f"{KERNEL_MARK}\n"
                f"# every kernel loads the workbook's notebook help at start (the hints hold after a restart)\n"
                f"c.InteractiveShellApp.extensions.append({EXTENSION!r})\n"
                f"# --- end of the workbook's block ---\n")
RISE_SCHEMA = Path("share/jupyter/labextensions/jupyterlab-rise/schemas/jupyterlab-rise/plugin.json")
SHORTCUTS_PLUGIN = "@jupyterlab/shortcuts-extension:shortcuts"
NOT_TYPING = ":not(.jp-mod-readWrite)"  # JupyterLab's notebook marks itself so while a text box has focus
TEMPLATES = Path(__file__).resolve().parent / "templates" / "nbconvert"


def _read_json(path) -> dict:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {display_path(path)} ({exc}): fix or remove it, then run "
                           "`python -m helpers setup-jupyter` again.") from exc
    return value if isinstance(value, dict) else {}


def _write_json(path, value) -> Path:
    return write_atomically(path, (json.dumps(value, indent=2) + "\n").encode("utf-8"))


def kernel_config(prefix) -> Path:
    """Add the workbook's block to ``ipython_kernel_config.py`` (kept: whatever else the file says)."""
    path = Path(prefix) / "etc" / "ipython" / "ipython_kernel_config.py"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if KERNEL_MARK in text:
        start = text.index(KERNEL_MARK)
        end = text.index("# --- end of the workbook's block ---\n", start) + len("# --- end of the workbook's block ---\n")
        text = text[:start] + text[end:]
    text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + KERNEL_BLOCK
    return write_atomically(path, text.encode("utf-8"))


def rise_shortcuts(prefix) -> list:
    """RISE's command-mode shortcuts, each disabled and added again with "not while typing" in its selector."""
    try:
        schema = json.loads((Path(prefix) / RISE_SCHEMA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # RISE is not installed here: nothing to change
    changed = []
    for shortcut in schema.get("jupyter.lab.shortcuts", []):
        selector = shortcut.get("selector", "")
        if "jp-mod-commandMode" not in selector or NOT_TYPING in selector:
            continue
        changed.append({**shortcut, "disabled": True})
        changed.append({**shortcut, "selector": selector.replace("jp-mod-commandMode",
                                                                 "jp-mod-commandMode" + NOT_TYPING)})
    return changed


def lab_overrides(prefix) -> Path:
    path = Path(prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides = _read_json(path)
    plugin = overrides.setdefault(SHORTCUTS_PLUGIN, {})
    ours = rise_shortcuts(prefix)
    commands = {(s["command"], tuple(s["keys"])) for s in ours}
    kept = [s for s in plugin.get("shortcuts", []) if (s.get("command"), tuple(s.get("keys", ()))) not in commands]
    plugin["shortcuts"] = kept + ours
    return _write_json(path, overrides)


def nbconvert_config(prefix) -> Path:
    path = Path(prefix) / "etc" / "jupyter" / "jupyter_nbconvert_config.json"
    config = _read_json(path)
    templates = config.setdefault("TemplateExporter", {})
    for key, value in (("extra_template_basedirs", str(TEMPLATES)),
                       ("extra_template_paths", str(PROJECT_ROOT / "notebooks"))):  # for rise.css
        templates[key] = [v for v in templates.get(key, []) if v != value] + [value]
    config.setdefault("HTMLExporter", {})["template_name"] = "workbook"
    config.setdefault("SlidesExporter", {})["template_name"] = "reveal"  # a subclass: keep its own template
    return _write_json(path, config)


def setup_jupyter(prefix=None) -> list:
    """Write the three settings into the environment at ``prefix`` (default: this Python's); returns their paths."""
    prefix = Path(prefix or sys.prefix)
    return [kernel_config(prefix), lab_overrides(prefix), nbconvert_config(prefix)]


def main_setup_jupyter(args) -> int:
    try:
        paths = setup_jupyter(getattr(args, "prefix", None))
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"  ✓ {display_path(path)}")
    return 0
