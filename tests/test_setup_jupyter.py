"""`python -m helpers setup-jupyter`: the workbook's settings written into an environment, merged with what is there."""
import json
import subprocess
import sys

from helpers.classroom.jupyter_setup import (
    EXTENSION,
    KERNEL_MARK,
    NOT_TYPING,
    RISE_SCHEMA,
    SHORTCUTS_PLUGIN,
    TEMPLATES,
    setup_jupyter,
)
from helpers.storage.paths import PROJECT_ROOT


def a_prefix_with_rise(tmp_path):
    """An environment with jupyterlab-rise's schema, copied from this one's (or a one-shortcut stand-in)."""
    prefix = tmp_path / "env"
    schema = prefix / RISE_SCHEMA
    schema.parent.mkdir(parents=True)
    installed = (__import__("pathlib").Path(sys.prefix) / RISE_SCHEMA)
    if installed.is_file():
        schema.write_text(installed.read_text())
    else:
        schema.write_text(json.dumps({"jupyter.lab.shortcuts": [
            {"command": "RISE:toggleOverview", "keys": ["W"], "selector": ".lm-Widget.reveal .jp-mod-commandMode"}]}))
    return prefix


def test_it_writes_the_three_settings_and_keeps_what_was_there(tmp_path):
    prefix = a_prefix_with_rise(tmp_path)
    kernel = prefix / "etc" / "ipython" / "ipython_kernel_config.py"
    kernel.parent.mkdir(parents=True)
    kernel.write_text("c.InteractiveShell.colors = 'Linux'\n")
    overrides = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True)
    overrides.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    for _ in range(2):  # twice: the second run changes nothing
        setup_jupyter(prefix)
    text = kernel.read_text()
    assert text.startswith("c.InteractiveShell.colors = 'Linux'") and text.count(KERNEL_MARK) == 1
    assert f"c.InteractiveShellApp.extensions.append({EXTENSION!r})" in text
    settings = json.loads(overrides.read_text())
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    shortcuts = settings[SHORTCUTS_PLUGIN]["shortcuts"]
    overview = [s for s in shortcuts if s["command"] == "RISE:toggleOverview"]
    assert len(overview) == 2 and overview[0]["disabled"] and overview[1]["selector"].endswith(NOT_TYPING)
    nbconvert = json.loads((prefix / "etc" / "jupyter" / "jupyter_nbconvert_config.json").read_text())
    assert nbconvert["HTMLExporter"]["template_name"] == "workbook"
    assert nbconvert["SlidesExporter"]["template_name"] == "reveal"
    assert nbconvert["TemplateExporter"]["extra_template_basedirs"] == [str(TEMPLATES)]


def test_the_html_export_it_configures_has_the_accessible_colours(tmp_path):
    """`jupyter nbconvert --to html` with the settings: nbconvert's lab template plus rise.css's colours."""
    import nbformat

    prefix = a_prefix_with_rise(tmp_path)
    setup_jupyter(prefix)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A title\n[a link](https://example.org)"),
                                         nbformat.v4.new_code_cell("x = 1  # a comment")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    env = {**__import__("os").environ, "JUPYTER_CONFIG_PATH": str(prefix / "etc" / "jupyter")}
    result = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", str(path)], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "n.html").read_text()
    assert "--jp-mirror-editor-comment-color: #3b6a6a" in html  # rise.css, included by the workbook template
    assert (PROJECT_ROOT / "notebooks" / "rise.css").read_text().splitlines()[8] in html


def test_the_command_line_says_what_it_wrote(tmp_path):
    prefix = a_prefix_with_rise(tmp_path)
    result = subprocess.run([sys.executable, "-m", "helpers", "setup-jupyter", "--prefix", str(prefix)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.count("✓") == 3
    (prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json").write_text("{not json")
    result = subprocess.run([sys.executable, "-m", "helpers", "setup-jupyter", "--prefix", str(prefix)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "overrides.json" in result.stderr and "Traceback" not in result.stderr
