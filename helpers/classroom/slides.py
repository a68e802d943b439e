"""Static slide decks that open with no network: ``python -m helpers slides``.

Each notebook is executed (outputs and figures included) and written as a reveal.js deck,
``data/slides/NN_name.slides.html``. nbconvert's template loads reveal.js and require.js from
CDNs; here reveal.js comes from a copy next to the decks, fetched once from the npm registry
(pinned version, sha256-checked) while the network is there (``prepare`` does it too), and
require.js is not needed (see ``templates/offline_slides.html.j2``). Copy the
whole ``data/slides/`` folder to present from another machine.
"""
import os
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from ..storage.download import DownloadError, atomic_write_bytes, download_file, sha256_of
from ..storage.paths import ENV_INSTRUCTOR, PROJECT_ROOT, data_dir, display_path

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"

#: The npm package a deck needs, pinned to the version nbconvert's reveal template is written for;
#: sha256 of the registry's tarball. (require.js, which nbconvert's template also loads from a CDN, is not
#: needed: helpers/templates/offline_slides.html.j2 loads reveal.js as plain scripts.)
VENDOR_PACKAGES = {
    "reveal.js": {
        "version": "4.0.2",
        "url": "https://registry.npmjs.org/reveal.js/-/reveal.js-4.0.2.tgz",
        "sha256": "0c234d5bfe539606c1af4bcc031f0d21ed99e264d90b7859abad34f7e3a0c587",
        "keep": ("dist", "plugin", "LICENSE"),
    },
}
REVEAL_DIR = "reveal.js"     # next to the decks
TEMPLATE = Path(__file__).resolve().parent / "templates" / "offline_slides.html.j2"
SLIDE_SIZE = (1280, 720)     # a projector's 720p


class SlidesError(RuntimeError):
    """A deck could not be built; the message says what failed and what to do."""


def vendor_dir() -> Path:
    return data_dir() / "vendor"


def _package_dir(name, spec, folder) -> Path:
    return Path(folder) / f"{name}-{spec['version']}"


def _verified(package: Path, spec) -> bool:
    marker = package / ".verified"
    return marker.is_file() and marker.read_text().strip() == spec["sha256"] and all(
        (package / part).exists() for part in spec["keep"])


def _extract(tarball: Path, spec, package: Path) -> None:
    """Unpack the parts of an npm tarball (``package/...``) that ``spec['keep']`` names, atomically."""
    package.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{package.name}.", dir=package.parent))
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            members = [m for m in archive.getmembers()  # plain files and folders under package/<kept part>
                       if (m.isfile() or m.isdir()) and m.name.split("/", 2)[1:2]
                       and m.name.split("/", 2)[1] in spec["keep"] and ".." not in m.name.split("/")
                       and not m.name.startswith("/")]
            try:
                archive.extractall(scratch, members=members, filter="data")
            except TypeError:  # Python before 3.10.12 / 3.11.4: no filters (the members are checked above)
                archive.extractall(scratch, members=members)
        missing = [part for part in spec["keep"] if not (scratch / "package" / part).exists()]
        if missing:
            raise SlidesError(f"{display_path(tarball)} lacks {', '.join(missing)}: not the expected package")
        (scratch / "package" / ".verified").write_text(spec["sha256"] + "\n")
        shutil.rmtree(package, ignore_errors=True)
        os.replace(scratch / "package", package)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch_vendor(folder=None, packages=None, *, timeout=30.0, retries=3) -> dict:
    """reveal.js in ``data/vendor/`` (fetched and sha256-checked once); returns ``{name: folder}``."""
    folder = Path(folder) if folder is not None else vendor_dir()
    packages = VENDOR_PACKAGES if packages is None else packages
    found = {}
    for name, spec in packages.items():
        package = _package_dir(name, spec, folder)
        if not _verified(package, spec):
            tarball = folder / f"{name}-{spec['version']}.tgz"
            if not (tarball.is_file() and sha256_of(tarball) == spec["sha256"]):
                try:
                    download_file(spec["url"], tarball, expected_sha256=spec["sha256"], timeout=timeout,
                                  retries=retries, desc=f"{name} {spec['version']}")
                except DownloadError as exc:
                    raise SlidesError(
                        f"{name} {spec['version']} is not in {display_path(folder)} and could not be fetched from the "
                        f"npm registry.\n{exc}\nOn a machine with network: run `python -m helpers slides` there and copy "
                        f"data/vendor/ (or data/slides/) over, or put {spec['url'].rsplit('/', 1)[1]} in "
                        f"{display_path(folder)}.") from exc
            _extract(tarball, spec, package)
        found[name] = package
    return found


def _install_assets(out_dir: Path, vendor: dict) -> None:
    """Copy reveal.js next to the decks, so the folder works on its own."""
    reveal = out_dir / REVEAL_DIR
    if not _verified(reveal, VENDOR_PACKAGES["reveal.js"]):
        scratch = Path(tempfile.mkdtemp(prefix=".reveal.", dir=out_dir))
        try:
            shutil.copytree(vendor["reveal.js"], scratch / REVEAL_DIR)
            shutil.rmtree(reveal, ignore_errors=True)
            os.replace(scratch / REVEAL_DIR, reveal)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def slide_notebooks():
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("[An interactive widget: it works in a running notebook (JupyterLab, or live slides with RISE), "
               "not in this static deck.]")
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")  # tqdm's text: "Epoch 1:  40%|████      | 52/130 [...]"


def for_a_static_deck(nb):
    """A static deck has no kernel: progress bars (a finished run's stale first frame) are dropped, the log
    they split is joined again, and other widgets say what they are instead of showing their Python repr."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_MIME in data:
                if PROGRESS_BAR.search(data.get("text/plain", "")):
                    continue
                output["data"] = {"text/plain": WIDGET_NOTE}
            previous = kept[-1] if kept else None
            if (output.get("output_type") == "stream" and previous is not None
                    and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
                previous["text"] += output["text"]  # the pieces a progress bar had split: one log again
                continue
            kept.append(output)
        cell["outputs"] = kept
    return nb


def deck_css() -> str:
    """The deck's sizes and colours: notebooks/rise.css, what RISE shows live (the static export's element names
    are the same)."""
    return (NOTEBOOKS_DIR / "rise.css").read_text(encoding="utf-8")


def build_deck(notebook, out_dir, *, execute=True, timeout=900) -> Path:
    """Execute one notebook (in its folder, a fresh kernel) and write it as an offline reveal.js deck."""
    import nbformat
    from nbclient.exceptions import CellExecutionError
    from nbconvert import SlidesExporter
    from nbconvert.preprocessors import ExecutePreprocessor

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    if execute:
        try:
            ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(
                nb, {"metadata": {"path": str(notebook.parent)}})
        except CellExecutionError as exc:
            raise SlidesError(f"{notebook.name} failed while executing for its deck:\n"
                              + "\n".join(str(exc).strip().splitlines()[-6:])) from exc
    exporter = SlidesExporter(template_file=str(TEMPLATE), reveal_url_prefix=REVEAL_DIR, reveal_number="c/t",
                              reveal_theme="white",
                              reveal_width=str(SLIDE_SIZE[0]), reveal_height=str(SLIDE_SIZE[1]))
    html, _ = exporter.from_notebook_node(for_a_static_deck(nb),
                                          resources={"metadata": {"name": notebook.stem}, "workbook_css": deck_css()})
    return atomic_write_bytes(Path(out_dir) / f"{notebook.stem}.slides.html", html.encode("utf-8"))


def build_decks(notebooks=None, out_dir=None, *, execute=True, instructor=None) -> list:
    """Decks for ``notebooks`` (default: all) in ``out_dir`` (default ``data/slides/``); returns their paths.

    ``instructor=True`` runs the notebooks in instructor mode (replaying what ``prepare`` trained,
    fast); the default keeps the environment as it is.
    """
    out_dir = Path(out_dir) if out_dir is not None else data_dir() / "slides"
    out_dir.mkdir(parents=True, exist_ok=True)
    _install_assets(out_dir, fetch_vendor())
    previous = os.environ.get(ENV_INSTRUCTOR)
    if instructor is not None:
        os.environ[ENV_INSTRUCTOR] = "1" if instructor else "0"
    try:
        decks = []
        for notebook in notebooks or slide_notebooks():
            decks.append(build_deck(notebook, out_dir, execute=execute))
            print(f"  ✓ {display_path(decks[-1])}")
        return decks
    finally:
        if previous is None:
            os.environ.pop(ENV_INSTRUCTOR, None)
        else:
            os.environ[ENV_INSTRUCTOR] = previous


def _not_a_notebook(path):
    """Why ``path`` is not a notebook that can become a deck, or None when it is one."""
    example = "give notebook paths such as notebooks/01_dataset.ipynb"
    if path.is_dir():
        return f"{path} is a folder, not a notebook; {example}"
    if not path.is_file():
        return f"{path} does not exist; {example}"
    if path.suffix != ".ipynb":
        return f"{path} is not a notebook (a .ipynb file); {example}"
    import nbformat

    try:
        nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises JSON, validation and decoding errors alike
        return f"{path} is not a readable notebook ({type(exc).__name__}: {str(exc)[:200]}); {example}"
    return None


def main_slides(args) -> int:
    notebooks = [Path(n) for n in args.notebooks] or None
    for path in notebooks or []:
        problem = _not_a_notebook(path)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    try:
        decks = build_decks(notebooks, args.out, execute=not args.no_execute,
                            instructor=True if args.instructor else None)
    except SlidesError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    folder = decks[0].parent if decks else None
    print(f"\n{len(decks)} deck(s) in {display_path(folder)}. Open one in a browser (no network needed); "
          "→ or Space: next slide, ←: back, Esc: overview, S: speaker notes.")
    return 0
