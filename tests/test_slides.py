"""Offline slide decks: the pinned reveal.js is fetched and verified once, decks reference nothing remote.

The decks are opened in a real browser, with the network blocked, in tests/test_browser.py.
"""
import hashlib
import io
import re
import subprocess
import sys
import tarfile

import nbformat
import pytest

from helpers.classroom.slides import SlidesError, build_decks, fetch_vendor


def fake_npm_tarball(files):
    """An npm-style tarball: every file under package/."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


FAKE_REVEAL = {"dist/reveal.js": "window.Reveal = {};", "dist/reveal.css": "", "dist/theme/white.css": "",
               "plugin/notes/notes.js": "window.RevealNotes = {};", "LICENSE": "MIT", "test/big.html": "not kept"}


@pytest.fixture
def npm(file_server, monkeypatch, tmp_path):
    """A loopback 'npm registry' serving a fake reveal.js; VENDOR_PACKAGES points at it."""
    root, url = file_server
    tarball = fake_npm_tarball(FAKE_REVEAL)
    (root / "reveal.js-4.0.2.tgz").write_bytes(tarball)
    spec = {"version": "4.0.2", "url": f"{url}/reveal.js-4.0.2.tgz", "sha256": hashlib.sha256(tarball).hexdigest(),
            "keep": ("dist", "plugin", "LICENSE")}
    monkeypatch.setattr("helpers.classroom.slides.VENDOR_PACKAGES", {"reveal.js": spec})
    monkeypatch.setattr("helpers.storage.download.time.sleep", lambda seconds: None)
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path / "data"))
    return root, spec


def test_vendor_is_fetched_verified_and_kept(npm, tmp_path):
    root, spec = npm
    package = fetch_vendor()["reveal.js"]
    assert package == tmp_path / "data" / "vendor" / "reveal.js-4.0.2"
    assert (package / "dist" / "reveal.js").read_text() == "window.Reveal = {};"
    assert not (package / "test").exists()  # only what a deck needs
    (root / "reveal.js-4.0.2.tgz").unlink()  # the registry is gone: the verified copy is enough
    assert fetch_vendor()["reveal.js"] == package


def test_tampered_tarball_is_refused(npm, tmp_path):
    root, spec = npm
    (root / "reveal.js-4.0.2.tgz").write_bytes(fake_npm_tarball(FAKE_REVEAL | {"dist/reveal.js": "evil()"}))
    with pytest.raises(SlidesError, match="sha256.*does not match") as info:
        fetch_vendor(retries=1)
    assert "python -m helpers slides" in str(info.value)
    assert not (tmp_path / "data" / "vendor" / "reveal.js-4.0.2").exists()


def test_no_registry_says_what_to_do(npm, tmp_path, monkeypatch):
    monkeypatch.setattr("helpers.classroom.slides.VENDOR_PACKAGES",
                        {"reveal.js": npm[1] | {"url": "http://127.0.0.1:9/reveal.js-4.0.2.tgz"}})
    with pytest.raises(SlidesError, match="(?s)could not be fetched from the npm registry.*put reveal.js-4.0.2.tgz in"):
        fetch_vendor(retries=1, timeout=2)


def test_deck_is_executed_and_loads_nothing_remote(npm, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell("print(6 * 7)"),
                nbformat.v4.new_markdown_cell("## Next slide")]
    nb.cells[2].metadata["slideshow"] = {"slide_type": "slide"}
    source = tmp_path / "01_tiny.ipynb"
    nbformat.write(nb, source)
    [deck] = build_decks([source], tmp_path / "slides")
    html = deck.read_text()
    assert deck.name == "01_tiny.slides.html" and "<pre>42\n</pre>" in html  # executed: the output is in the deck
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts == ["reveal.js/dist/reveal.js", "reveal.js/plugin/notes/notes.js"]
    assert "require(" not in html and "cdnjs" not in html and "unpkg" not in html
    for path in ("reveal.js/dist/reveal.js", "reveal.js/plugin/notes/notes.js", "reveal.js/dist/reveal.css"):
        assert (deck.parent / path).is_file()


def test_slides_command_rejects_a_missing_notebook(tmp_path):
    result = subprocess.run([sys.executable, "-m", "helpers", "slides", str(tmp_path / "nope.ipynb")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "nope.ipynb does not exist" in result.stderr


def test_prepare_writes_decks_from_the_notebooks_it_timed(npm, tmp_path, monkeypatch, capsys):
    from helpers.classroom import instructor

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("print('ran while timing')")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran while timing\n")]
    monkeypatch.setattr(instructor, "lecture_notebooks", lambda: [tmp_path / "notebooks" / "01_tiny.ipynb"])
    executed = tmp_path / "data" / "slides" / "executed"
    executed.mkdir(parents=True)
    nbformat.write(nb, executed / "01_tiny.ipynb")
    instructor.build_slides(executed)  # not executed again: the outputs come from the timing run
    deck = tmp_path / "data" / "slides" / "01_tiny.slides.html"
    assert "ran while timing" in deck.read_text() and not executed.exists()
    instructor.build_slides()  # a second prepare keeps the decks
    assert "decks written before" in capsys.readouterr().out
