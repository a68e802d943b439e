"""What a person sees, in a real Chromium at 1280x720, doing what people do: JupyterLab, activity 4's checker typed
into key by key, RISE slides and the offline decks presented with the → key alone, and axe-core's WCAG 2.1 AA
rules on every deck, every HTML export and the JupyterLab view of every notebook.

    pytest tests/test_browser.py        # several minutes; screenshots of failures in build/browser-tests/

Chromium is Debian's ``chromium`` package, driven by Python's ``playwright`` (no browser download); axe-core comes
from the npm registry (pinned, sha256-checked, kept in data/vendor/). A private JupyterLab runs on loopback over a
copy of the notebooks, with the tiny test model.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from helpers.storage.paths import PROJECT_ROOT

CHROMIUM = os.environ.get("WORKBOOK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
INSTALL_HELP = ("install Debian's Chromium (as root: apt-get install -y chromium fonts-noto-color-emoji) or set "
                "WORKBOOK_CHROMIUM to a Chromium binary, and `pip install -r requirements-dev.txt` for playwright")
if CHROMIUM is None:
    pytest.skip(f"browser tests skipped: Chromium not found; {INSTALL_HELP}", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason=f"browser tests skipped: no playwright; {INSTALL_HELP}")

pytestmark = pytest.mark.slow
SCREENSHOTS = PROJECT_ROOT / "build" / "browser-tests"
VIEWPORT = {"width": 1280, "height": 720}
NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TOKEN = uuid.uuid4().hex


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on loopback over a copy of notebooks/; yields (base URL, its root folder)."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    shutil.copytree(PROJECT_ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".*", "zz_*"))
    # Every cell rendered (no windowing), so each prompt and output in the page is current.
    settings = base / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port = _free_port()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
               f"--LabApp.workspaces_dir={base / 'workspaces'}", f"--LabApp.user_settings_dir={base / 'settings'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "TQDM_DISABLE": "1", "WORKBOOK_TEST_MODEL": "1"}
    # the workbook's Jupyter settings (RISE's shortcuts spare text boxes), as `bash workbook.sh lab` makes them
    from helpers.classroom.jupyter_setup import setup_jupyter

    setup_jupyter()
    log = open(base / "lab.log", "wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail("JupyterLab did not start:\n" + (base / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield url, root
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh 1280x720 page; on failure, its screenshot goes to build/browser-tests/<test name>.png."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    yield page
    failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed  # tests/conftest.py
    if failed:
        screenshot(page, request.node.name)
    context.close()


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^\w.-]+", "_", name) + ".png")
    try:
        page.screenshot(path=str(path))
        print(f"screenshot: {path}")
    except Exception as exc:  # a crashed page: the failure itself says more
        print(f"no screenshot ({exc})")


def _delete_sessions(url):
    """Shut down every kernel of the private server (each RISE page starts one)."""
    import json

    sessions = json.load(urllib.request.urlopen(f"{url}/api/sessions?token={TOKEN}"))
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}?token={TOKEN}", method="DELETE")
        urllib.request.urlopen(request)


# --------------------------------------------------------------------------- JupyterLab
def open_notebook(page, url, name):
    page.goto(f"{url}/lab/workspaces/test-{uuid.uuid4().hex[:8]}/tree/{name}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    # the kernel is started and connected (before that, "Run All" is lost)
    page.wait_for_function("""() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
                                     .some(item => /\\(ipykernel\\) \\| Idle/.test(item.textContent))""", timeout=90_000)


PROMPTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
                     .map(p => p.textContent.trim())"""
ERRORS = """() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                     .map(o => o.textContent).filter(t => /Traceback|Error\\b|Exception\\b/.test(t))"""


def run_all(page, timeout_s):
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        prompts = page.evaluate(PROMPTS)
        if page.evaluate(ERRORS) or (prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)):
            break
        time.sleep(1)
    return page.evaluate(PROMPTS), page.evaluate(ERRORS)


@pytest.mark.parametrize("name, timeout_s", [("01_dataset.ipynb", 180), ("06_inference.ipynb", 420)])
def test_notebook_runs_in_jupyterlab(lab, page, name, timeout_s):
    url, _ = lab
    open_notebook(page, url, name)
    try:
        check_notebook_run(page, name, timeout_s)
        if name == "06_inference.ipynb":
            check_checker_on_a_live_slide(page, url, name)
    finally:
        _delete_sessions(url)


def check_notebook_run(page, name, timeout_s):
    prompts, errors = run_all(page, timeout_s)
    assert not errors, f"{name}: error output in JupyterLab:\n" + "\n---\n".join(e[-1500:] for e in errors)
    unfinished = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
    assert prompts and not unfinished, f"{name}: code cells {unfinished} did not run (prompts {prompts})"
    if name == "01_dataset.ipynb":
        text = page.evaluate("document.querySelector('.jp-Notebook').textContent")
        assert re.search(r"Taken from: (datasets/|data/|downloaded from)", text)  # which copy it used

    if name == "06_inference.ipynb":  # activity 4: the spam checker answers a click
        checker = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator("textarea")).first
        check_the_checker(page, checker)
    assert not page.errors, page.errors


MESSAGE = "WINNER!! You have won a free cruise. Call 09061701461 now to claim: txt STOP to end"


def type_into_the_checker(page, checker, text):
    """Click into activity 4's text box and type ``text`` as a person does: real key events, with a delay."""
    box = checker.locator("textarea")
    box.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.type(text, delay=25)
    return box


def check_the_checker(page, checker, on_a_slide=False):
    """Type into activity 4's widget key by key, press Classify, and read the verdict and the P(spam) bar on
    screen (an empty message first). On a slide, the slide must stay put and out of the overview."""
    checker.scroll_into_view_if_needed()
    slide_before = page.evaluate(CURRENT_SLIDE_INDEX) if on_a_slide else None
    verdict = checker.locator(".widget-html-content").last
    type_into_the_checker(page, checker, "")
    checker.get_by_role("button", name="Classify").click()
    page.wait_for_function("el => !/confident/.test(el.textContent) && el.textContent.trim()",
                           arg=verdict.element_handle(), timeout=30_000)
    box = type_into_the_checker(page, checker, MESSAGE)
    assert box.input_value() == MESSAGE, f"typed {MESSAGE!r}, the box holds {box.input_value()!r}"
    if on_a_slide:
        assert page.evaluate(CURRENT_SLIDE_INDEX) == slide_before, "typing moved the slide"
        assert not page.evaluate("document.querySelector('.reveal').classList.contains('overview')"), \
            "typing opened the slide overview"
    checker.get_by_role("button", name="Classify").click()
    page.wait_for_function("el => /confident/.test(el.textContent)", arg=verdict.element_handle(), timeout=30_000)
    assert re.search(r"(Spam|Ham) \(\d+\.\d% confident\)", verdict.text_content())
    bar = checker.locator(".widget-hprogress .progress")
    rect = bar.bounding_box()
    assert rect and rect["width"] > 50 and rect["height"] > 5, f"the P(spam) bar is not shown ({rect})"
    assert 0 <= rect["x"] and rect["x"] + rect["width"] <= VIEWPORT["width"] and rect["y"] + rect["height"] <= VIEWPORT["height"]
    if on_a_slide:
        assert page.evaluate(CURRENT_SLIDE_INDEX) == slide_before, "clicking Classify moved the slide"
        assert not page.evaluate("document.querySelector('.reveal').classList.contains('overview')")


CURRENT_SLIDE_INDEX = """() => [...document.querySelectorAll('.reveal .slides > section')]
                                 .findIndex(s => s.classList.contains('present'))"""


def check_checker_on_a_live_slide(page, url, name):
    """Present the notebook with RISE (same kernel, as an instructor does after running it), walk to activity
    4's slide with → alone, run the checker's cell there, then type a message into it key by key."""
    page.keyboard.press("Control+s")  # RISE reads the notebook from disk
    page.wait_for_timeout(1500)
    page.goto(f"{url}/rise/{name}?token={TOKEN}")
    page.wait_for_selector(".reveal .slides section.present", timeout=90_000)
    page.wait_for_timeout(2500)
    page.keyboard.press("Home")
    page.wait_for_timeout(500)
    for _ in range(200):
        cell = page.locator(".reveal .slides section.present .jp-CodeCell").filter(has_text="spam_checker(model")
        if cell.count():
            break
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(250)
    else:
        pytest.fail(f"{name}: → never reached a slide with the spam_checker cell")
    cell.first.evaluate("el => el.setAttribute('data-test', 'spam-checker-cell')")  # keep hold of it
    cell = page.locator("[data-test=spam-checker-cell]")
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+Enter")  # run it live, on the slide (and stay there)
    checker = cell.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator("textarea"))
    try:
        checker.first.wait_for(timeout=60_000)
    except sync_api.TimeoutError:
        shown = cell.locator(".jp-OutputArea").text_content()
        pytest.fail(f"{name}: on the live RISE slide the checker did not render as a widget; it shows {shown[:200]!r}")
    check_the_checker(page, checker.first, on_a_slide=True)


# --------------------------------------------------------------------------- what a slide shows
#: One function judges a slide as the back row sees it, live (RISE) or in an offline deck: everything inside the
#: 1280x720 viewport, nothing cut at an edge, prose >= 22 px, code and output >= 18 px, a long log showing its end
#: with no line cut at its top, no stale progress bar, no slide that is one short cell on an empty page.
JUDGE_SLIDE = """(slide) => {
  const vw = innerWidth, vh = innerHeight, problems = [];
  const visible = el => { const r = el.getBoundingClientRect(); const st = getComputedStyle(el);
                          return r.width > 0 && r.height > 0 && st.visibility !== 'hidden' && st.display !== 'none'; };
  const scroller = el => { for (let p = el.parentElement; p && p !== slide; p = p.parentElement) {
      const st = getComputedStyle(p);
      if (/(auto|scroll)/.test(st.overflowY + st.overflowX) && (p.scrollHeight > p.clientHeight + 1 || p.scrollWidth > p.clientWidth + 1)) return p; }
    return null; };
  const name = el => (el.textContent || el.getAttribute('alt') || el.tagName).trim().replace(/\\s+/g, ' ').slice(0, 50);
  const texts = [...slide.querySelectorAll('p, li, h1, h2, h3, td, th, summary, pre, .cm-line, img, .widget-vbox, .jp-RenderedHTMLCommon')];
  for (const el of texts.filter(visible)) {
    const box = scroller(el);
    if (box) {
      if (box.scrollWidth > box.clientWidth + 2 && !box.dataset.judged) { box.dataset.judged = 1;
        problems.push(`cut at its right edge (scrolls sideways): ${name(box)}`); }
      continue;
    }
    const r = el.getBoundingClientRect();
    if (r.left < -1 || r.top < -1 || r.right > vw + 1 || r.bottom > vh + 1)
      problems.push(`outside the 1280x720 screen (${Math.round(r.left)},${Math.round(r.top)} to ${Math.round(r.right)},${Math.round(r.bottom)}): ${name(el)}`);
  }
  const px = el => parseFloat(getComputedStyle(el).fontSize);
  for (const el of [...slide.querySelectorAll('.jp-RenderedMarkdown p, .jp-RenderedMarkdown li, .jp-RenderedMarkdown td')].filter(visible))
    if (px(el) < 22) problems.push(`prose at ${px(el)} px (under 22): ${name(el)}`);
  for (const el of [...slide.querySelectorAll('.cm-line, .jp-InputArea-editor .highlight pre, .jp-OutputArea-output pre, .jp-OutputArea-output td')].filter(visible))
    if (px(el) < 18) problems.push(`code or output at ${px(el)} px (under 18): ${name(el)}`);
  for (const log of slide.querySelectorAll('.jp-OutputArea-output.jp-RenderedText')) {
    if (!visible(log) || log.scrollHeight <= log.clientHeight + 1) continue;
    const walker = document.createTreeWalker(log, NodeFilter.SHOW_TEXT); let last = null, node;
    while ((node = walker.nextNode())) if (node.textContent.trim()) last = node;
    const range = document.createRange(); range.selectNodeContents(last);
    const rects = [...range.getClientRects()], end = rects[rects.length - 1], b = log.getBoundingClientRect();
    if (!end || end.bottom > b.bottom + 1 || end.top < b.top - 1) problems.push(`a long log does not show its last line: ${name(log)}`);
    const line = parseFloat(getComputedStyle(log.querySelector('pre') || log).lineHeight);
    if (Math.abs(log.clientHeight / line - Math.round(log.clientHeight / line)) > 0.01)
      problems.push(`a long log's box is not a whole number of lines tall: its top line is cut`);
  }
  if (/\\d+%\\|/.test(slide.textContent) || /VBox\\(children=/.test(slide.textContent)) problems.push('a stale progress bar or widget repr');
  const cells = slide.querySelectorAll('.jp-Cell').length;
  const boxes = [...slide.children].map(c => c.getBoundingClientRect()).filter(r => r.height > 0);
  const extent = boxes.length ? Math.max(...boxes.map(r => r.bottom)) - Math.min(...boxes.map(r => r.top)) : 0;
  if (cells === 1 && extent < 110 && !slide.querySelector('h1, h2, h3')) problems.push(`one short cell on an empty slide (${Math.round(extent)} px)`);
  return {problems, text: (slide.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60)};
}"""


@pytest.fixture(scope="module")
def executed(lab, executed_notebook):
    """``executed(name)``: the notebook executed as CI runs it (test model; nbval's run when there was one),
    beside the lab's copies with notebooks/rise.css, so RISE shows its outputs."""
    _, root = lab
    folder = root / "executed"
    folder.mkdir()
    shutil.copy(PROJECT_ROOT / "notebooks" / "rise.css", folder / "rise.css")  # RISE loads it from the folder

    def execute(name):
        if not (folder / name).is_file():
            shutil.copy(executed_notebook(name), folder / name)
        return f"executed/{name}"

    return execute


def slide_count(notebook_path):
    """How many slides the notebook's metadata makes: every one a top-level slide (no vertical stacks)."""
    import nbformat

    nb = nbformat.read(notebook_path, as_version=4)
    types = [cell.metadata.get("slideshow", {}).get("slide_type", "-") for cell in nb.cells]
    assert "subslide" not in types, "a sub-slide: → would skip it (tools/refresh_notebooks.py makes slides only)"
    return types.count("slide")


def settle(page, timeout_ms=3000):
    """Wait until the current slide has stopped moving (reveal.js's transition), as the eye does."""
    page.wait_for_timeout(100)
    page.wait_for_function("() => !document.getAnimations().some(a => a instanceof CSSTransition && a.playState === 'running')", timeout=timeout_ms)
    page.wait_for_timeout(50)


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_rise_deck_presented_with_the_arrow_key(lab, executed, page, name):
    """An instructor presents the executed notebook live with RISE, pressing → alone: every slide is reached,
    and each shows everything readably inside 1280x720 (JUDGE_SLIDE)."""
    url, root = lab
    page.goto(f"{url}/rise/{executed(name)}?token={TOKEN}")
    page.wait_for_selector(".reveal .slides section.present", timeout=90_000)
    page.wait_for_timeout(2500)  # outputs and fonts settle
    total = slide_count(root / executed(name))
    seen, problems = [], []
    try:
        page.keyboard.press("Home")
        page.wait_for_timeout(400)
        for _ in range(total + 5):
            index = page.evaluate(CURRENT_SLIDE_INDEX)
            if seen and index == seen[-1]:
                break  # → at the last slide stays there
            seen.append(index)
            judged = page.evaluate(f"() => ({JUDGE_SLIDE})([...document.querySelectorAll('.reveal .slides > section.present')].pop())")
            if judged["problems"]:
                problems.append(f"slide {len(seen)} ({judged['text']!r}): " + "; ".join(judged["problems"]))
                screenshot(page, f"rise_{name}_slide{len(seen)}")
            page.keyboard.press("ArrowRight")
            settle(page)
    finally:
        _delete_sessions(url)
    assert len(seen) == total, f"{name}: → reached {len(seen)} of its {total} slides"
    assert not problems, f"{name}: {len(problems)} slide(s) not readable at 1280x720 (screenshots in {SCREENSHOTS}):\n" \
        + "\n".join(problems)


# --------------------------------------------------------------------------- the offline decks
def a_deck(executed_notebook, name, folder):
    from helpers.classroom.slides import SlidesError, build_decks, fetch_vendor

    try:
        fetch_vendor(retries=1)
    except SlidesError as exc:
        pytest.skip(f"reveal.js is not in data/vendor/ and the npm registry is unreachable: {exc}")
    [deck] = build_decks([executed_notebook(name)], folder, execute=False)
    return deck


def only_local(page):
    """Block and record every request that would leave the machine (fonts included)."""
    asked = []

    def route(request_route):
        if request_route.request.url.startswith(("file:", "data:")):
            request_route.continue_()
        else:
            asked.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    return asked


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_static_deck_presented_with_the_arrow_key(page, tmp_path, executed_notebook, name):
    """The offline deck (`python -m helpers slides`), opened from file:// with the network blocked and presented
    with → alone: it asks nothing of the web (fonts included), → reaches every slide, and each slide shows
    everything readably inside 1280x720 (JUDGE_SLIDE)."""
    deck = a_deck(executed_notebook, name, tmp_path / "slides")
    asked = only_local(page)
    page.goto(deck.as_uri())
    page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=15_000)
    page.evaluate("Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
    page.wait_for_timeout(500)
    assert page.evaluate("Reveal.getScale()") >= 0.999, "the deck is shrunk: its text is smaller than rise.css says"
    total, seen, problems = page.evaluate("Reveal.getTotalSlides()"), set(), []
    for _ in range(total + 2):
        seen.add(page.evaluate("Reveal.getSlidePastCount()"))
        judged = page.evaluate(f"() => ({JUDGE_SLIDE})(Reveal.getCurrentSlide())")
        if judged["problems"]:
            problems.append(f"slide {len(seen)} ({judged['text']!r}): " + "; ".join(judged["problems"]))
            screenshot(page, f"deck_{name}_slide{len(seen)}")
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(80)
    assert len(seen) == total, f"{name}: → reached {len(seen)} of its {total} slides"
    assert not asked, f"{name}'s offline deck asked the web for {asked}"
    assert not page.errors, page.errors
    assert not problems, f"{name}'s offline deck (screenshots in {SCREENSHOTS}):\n" + "\n".join(problems)


# --------------------------------------------------------------------------- WCAG 2.1 AA (axe-core)
AXE = {"version": "4.14.1", "url": "https://registry.npmjs.org/axe-core/-/axe-core-4.14.1.tgz",
       "sha256": "e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745", "keep": ("axe.min.js", "LICENSE")}
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def axe_source():
    from helpers.classroom.slides import SlidesError, fetch_vendor

    try:
        folder = fetch_vendor(packages={"axe-core": AXE}, retries=1)["axe-core"]
    except SlidesError as exc:
        pytest.skip(f"axe-core is not in data/vendor/ and the npm registry is unreachable: {exc}")
    return (folder / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page, axe_source, include=None, exclude=None):
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    return page.evaluate("""async ([include, exclude, tags]) => {
        const context = include ? {include: include, exclude: exclude || []} : document;
        const result = await axe.run(context, {runOnly: {type: 'tag', values: tags}});
        return result.violations.map(v => `${v.id} (${v.nodes.length}): ` + v.nodes.slice(0, 3).map(n =>
            `${n.target.join(' ')}: ${((n.any[0] || n.all[0] || n.none[0] || {}).message || '').slice(0, 140)}`).join(' | '));
    }""", [include, exclude, WCAG_AA])


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_axe_finds_no_wcag_violation_in_the_deck_and_the_export(page, tmp_path, executed_notebook, axe_source, name):
    """axe-core's WCAG 2.0/2.1 A and AA rules on the offline deck (each slide as it is on screen) and on the
    HTML export (`jupyter nbconvert --to html`, as `setup-jupyter` configures it): 0 violations."""
    from nbconvert import HTMLExporter

    from helpers.classroom.jupyter_setup import TEMPLATES

    deck = a_deck(executed_notebook, name, tmp_path / "slides")
    only_local(page)
    page.goto(deck.as_uri())
    page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=15_000)
    page.evaluate("Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
    found = {}
    for number in range(1, page.evaluate("Reveal.getTotalSlides()") + 1):  # each slide as it is on screen
        page.wait_for_timeout(50)
        for violation in axe_violations(page, axe_source, include=[[".reveal .slides section.present"]]):
            found.setdefault("deck", []).append(f"slide {number}: {violation}")
        page.evaluate("Reveal.next()")
    exporter = HTMLExporter(template_name="workbook", extra_template_basedirs=[str(TEMPLATES)],
                            extra_template_paths=[str(PROJECT_ROOT / "notebooks")])
    html, _ = exporter.from_filename(str(executed_notebook(name)))
    export = tmp_path / f"{name}.html"
    export.write_text(html, encoding="utf-8")
    page.goto(export.as_uri())
    page.wait_for_timeout(300)
    found["export"] = axe_violations(page, axe_source, include=[["main"], [".jp-Notebook"]])
    if any(found.values()):
        screenshot(page, f"axe_{name}")
    assert not any(found.values()), "\n".join(f"{where}: {v}" for where, violations in found.items() for v in violations)


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_axe_finds_no_wcag_violation_in_the_jupyterlab_view(lab, executed, page, axe_source, name):
    """The executed notebook open in JupyterLab: 0 violations in the notebook's own content, its rendered text and
    its outputs. JupyterLab's own interface (menus, the code editor widget, its cell controls) is reported
    (printed), not judged: it is not the workbook's."""
    url, _ = lab
    page.goto(f"{url}/lab/workspaces/axe-{uuid.uuid4().hex[:8]}/tree/{executed(name)}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_timeout(2500)
    content_parts = [[".jp-NotebookPanel-notebook .jp-RenderedMarkdown"],
                     [".jp-NotebookPanel-notebook .jp-OutputArea-output"]]  # what the notebook holds
    try:
        content = axe_violations(page, axe_source, include=content_parts)
        interface = axe_violations(page, axe_source, exclude=content_parts)
    finally:
        _delete_sessions(url)
    print(f"{name}: JupyterLab's own interface (not the workbook's):", interface or "no violations")
    if content:
        screenshot(page, f"axe_lab_{name}")
    assert not content, f"{name} in JupyterLab:\n" + "\n".join(content)
