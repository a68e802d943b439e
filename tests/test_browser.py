"""What a person sees, in a real Chromium: JupyterLab, the spam-checker widget, RISE slides, the offline deck.

    pytest tests/test_browser.py        # about 3 minutes; screenshots of failures in build/browser-tests/

Chromium is Debian's ``chromium`` package, driven by Python's ``playwright`` (no browser download).
A private JupyterLab runs on loopback over a copy of the notebooks, with the tiny test model.
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


def check_the_checker(page, checker):
    """Type into activity 4's widget, press Classify, read its verdict (an empty message first)."""
    checker.scroll_into_view_if_needed()
    verdict = checker.locator(".widget-html-content").last
    checker.locator("textarea").fill("")  # first an empty message: the verdict must say so
    checker.get_by_role("button", name="Classify").click()
    page.wait_for_function("el => !/confident/.test(el.textContent) && el.textContent.trim()",
                           arg=verdict.element_handle(), timeout=30_000)
    checker.locator("textarea").fill("WINNER!! You have won a free cruise. Call 09061701461 now to claim")
    checker.get_by_role("button", name="Classify").click()
    page.wait_for_function("el => /confident/.test(el.textContent)", arg=verdict.element_handle(), timeout=30_000)
    assert re.search(r"(Spam|Ham) \(\d+\.\d% confident\)", verdict.text_content())


def check_checker_on_a_live_slide(page, url, name):
    """Present the notebook with RISE (same kernel, as an instructor does after running it), walk to
    activity 4's slide, run the checker's cell there (Ctrl+Enter), then type a message into it."""
    page.keyboard.press("Control+s")  # RISE reads the notebook from disk
    page.wait_for_timeout(1500)
    page.goto(f"{url}/rise/{name}?token={TOKEN}")
    page.wait_for_selector(".reveal .slides section.present", timeout=90_000)
    page.wait_for_timeout(2500)
    present = page.locator(".reveal .slides section.present").last
    for _ in range(200):
        cell = present.locator(".jp-CodeCell").filter(has_text="spam_checker(model")
        if cell.count():
            break
        page.keyboard.press("Space")
        page.wait_for_timeout(300)
    else:
        pytest.fail(f"{name}: no slide of the RISE deck shows the spam_checker cell")
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
    check_the_checker(page, checker.first)


# --------------------------------------------------------------------------- RISE
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


SLIDE = """() => {
  const present = [...document.querySelectorAll('.reveal .slides section.present')];
  const slide = present[present.length - 1];
  const boxes = [...slide.children].map(child => child.getBoundingClientRect());
  return {index: [...document.querySelectorAll('.reveal .slides section')].indexOf(slide),
          // the content's own extent: independent of where a transition has it at the moment
          extent: Math.max(0, ...boxes.map(b => b.bottom)) - Math.min(...boxes.map(b => b.top)),
          height: slide.scrollHeight,
          text: (slide.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60)};
}"""


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_rise_slides_fit_1280x720(lab, executed, page, name):
    """Each slide of the RISE deck (with outputs) fits the viewport; walks the deck with Space."""
    url, _ = lab
    page.goto(f"{url}/rise/{executed(name)}?token={TOKEN}")
    page.wait_for_selector(".reveal .slides section.present", timeout=90_000)
    page.wait_for_timeout(2500)  # outputs and fonts settle
    seen, too_tall = [], []
    try:
        for _ in range(300):
            slide = page.evaluate(SLIDE)
            if seen and slide["index"] == seen[-1]:
                break  # Space at the last slide stays there
            seen.append(slide["index"])
            tallest = max(slide["extent"], slide["height"])
            if tallest > VIEWPORT["height"] + 1:
                too_tall.append(f"slide {len(seen)} ({slide['text']!r}): {tallest:.0f} px")
                screenshot(page, f"rise_{name}_slide{len(seen)}")
            page.keyboard.press("Space")
            page.wait_for_timeout(350)
    finally:
        _delete_sessions(url)
    assert len(seen) >= 5, f"{name}: only {len(seen)} slides; RISE did not render the deck"
    assert not too_tall, (f"{name}: {len(too_tall)} slide(s) taller than 720 px (screenshots in {SCREENSHOTS}):\n"
                          + "\n".join(too_tall))


# --------------------------------------------------------------------------- the offline deck
def test_static_deck_navigates_with_the_network_blocked(page, tmp_path, executed_notebook):
    from helpers.classroom.slides import SlidesError, build_decks, fetch_vendor

    try:
        fetch_vendor(retries=1)
    except SlidesError as exc:
        pytest.skip(f"reveal.js is not in data/vendor/ and the npm registry is unreachable: {exc}")
    [deck] = build_decks([executed_notebook("01_dataset.ipynb")], tmp_path / "slides", execute=False)
    blocked = []

    def only_local(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(deck.as_uri())
    page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=15_000)
    total = page.evaluate("Reveal.getTotalSlides()")
    assert total >= 10
    assert page.evaluate("Reveal.getIndices().h") == 0
    page.keyboard.press("ArrowRight")
    page.wait_for_function("Reveal.getIndices().h === 1", timeout=5_000)
    for _ in range(total):
        page.keyboard.press("Space")
    page.wait_for_function("Reveal.isLastSlide()", timeout=5_000)
    assert "Data file:" in page.evaluate("document.querySelector('.reveal .slides').textContent")  # executed
    assert not page.errors, page.errors
    assert all("fonts.googleapis.com" in url for url in blocked), blocked  # only the theme's web font was asked for


DECK_SLIDE = """() => {
  const slide = Reveal.getCurrentSlide(), scale = Reveal.getScale();
  const boxes = [...slide.children].map(child => child.getBoundingClientRect()).filter(b => b.height > 0);
  const extent = boxes.length ? (Math.max(...boxes.map(b => b.bottom)) - Math.min(...boxes.map(b => b.top))) / scale : 0;
  const logs = [...slide.querySelectorAll('.jp-Cell-outputArea')]  // a table keeps its header in view instead
      .filter(box => box.scrollHeight > box.clientHeight + 2 && !box.querySelector('table'));
  return {h: Reveal.getIndices().h, v: Reveal.getIndices().v || 0, extent: extent,
          logs_not_at_end: logs.filter(box => box.scrollTop + box.clientHeight < box.scrollHeight - 2).length,
          stale: /\\d+%\\|/.test(slide.textContent) || /VBox\\(children=/.test(slide.textContent),
          text: (slide.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60)};
}"""


@pytest.mark.parametrize("name", [path.name for path in NOTEBOOKS])
def test_static_deck_slides_fit_1280x720(page, tmp_path, executed_notebook, name):
    """The offline deck (python -m helpers slides) gets RISE's check: every slide fits 1280x720 without
    scrolling, every output box that scrolls opens at its end (a log shows its last lines), and no stale
    progress bar or widget repr is left. Screenshots of failing slides go to build/browser-tests/."""
    from helpers.classroom.slides import SlidesError, build_decks, fetch_vendor

    try:
        fetch_vendor(retries=1)
    except SlidesError as exc:
        pytest.skip(f"reveal.js is not in data/vendor/ and the npm registry is unreachable: {exc}")
    [deck] = build_decks([executed_notebook(name)], tmp_path / "slides", execute=False)
    page.goto(deck.as_uri())
    page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=15_000)
    page.evaluate("Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
    page.wait_for_timeout(500)
    problems = []
    for number in range(1, page.evaluate("Reveal.getTotalSlides()") + 1):
        slide = page.evaluate(DECK_SLIDE)
        where = f"slide {number} ({slide['h']}/{slide['v']}, {slide['text']!r})"
        found = []
        if slide["extent"] > VIEWPORT["height"] + 1:
            found.append(f"{slide['extent']:.0f} px tall")
        if slide["logs_not_at_end"]:
            found.append(f"{slide['logs_not_at_end']} output box(es) not scrolled to their end")
        if slide["stale"]:
            found.append("a stale progress bar or widget repr")
        if found:
            problems.append(f"{where}: " + ", ".join(found))
            screenshot(page, f"deck_{name}_slide{number}")
        page.evaluate("Reveal.next()")
        page.wait_for_timeout(60)
    assert not problems, f"{name}'s offline deck (screenshots in {SCREENSHOTS}):\n" + "\n".join(problems)
    assert not page.errors, page.errors
