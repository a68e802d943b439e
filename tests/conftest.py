import http.server
import os
import threading
from pathlib import Path

import pytest

from helpers.paths import ENV_SMS_ZIP, PROJECT_ROOT


SHIPPED_ZIP = PROJECT_ROOT / "datasets" / "sms_spam_collection.zip"


def find_staged_zip():
    for candidate in (os.environ.get(ENV_SMS_ZIP), PROJECT_ROOT / "data" / "sms_spam_collection.zip", SHIPPED_ZIP):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def staged_zip():
    """The original UCI zip: a staged copy, or the one shipped in datasets/."""
    path = find_staged_zip()
    if path is None:
        pytest.skip("the SMS Spam Collection zip is missing: restore datasets/ (git checkout -- datasets) "
                    "or set WORKBOOK_SMS_ZIP")
    return path


@pytest.fixture
def offline_env(monkeypatch, tmp_path):
    """An empty data folder, no staged dataset and no shipped copy: only a download can help."""
    monkeypatch.delenv(ENV_SMS_ZIP, raising=False)
    monkeypatch.setattr("helpers.data.SHIPPED_ZIP", tmp_path / "not-shipped" / "sms_spam_collection.zip")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    """A loopback HTTP server over a temporary folder: yields (folder, base_url)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = lambda *a, **k: _QuietHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def split_dir(tmp_path_factory, staged_zip):
    """The three split CSVs, built once for the session in a private folder."""
    from helpers import prepare_spam_splits

    folder = tmp_path_factory.mktemp("splits")
    prepare_spam_splits(local_copy=staged_zip, data_folder=folder)
    return folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each test's call report on the item, so a fixture can tell a failure (tests/test_browser.py's screenshots)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
