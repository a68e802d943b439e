"""Shared fixtures: the shipped dataset, offline folders, a loopback file server, and the tiny models and
messages that most tests are built from (factories, so each test makes its own fresh model)."""
import http.server
import os
import threading
from pathlib import Path

import pytest
import torch

from helpers import GPTModel, get_gpt2_tokenizer, prepare_for_classification
from helpers.storage.paths import ENV_SMS_ZIP, PROJECT_ROOT

#: A GPT small enough to train in seconds, with GPT-2's vocabulary and a context longer than the lecture's 120.
TINY_CONFIG = {"vocab_size": 50257, "context_length": 128, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
               "drop_rate": 0.0, "qkv_bias": True}
#: Messages of every kind a classifier meets: clear spam, clear ham, very short, long, repeated.
MESSAGES = ("Free money! Click now!", "Meeting at 3pm today", "Win a free prize today!", "ok",
            "Your package will arrive tomorrow", "URGENT: Claim your reward now!!! Call 09061701461 " * 8)


def make_gpt(seed=0, **config):
    """A tiny GPTModel with random weights (``config`` overrides ``TINY_CONFIG``), in eval mode."""
    torch.manual_seed(seed)
    return GPTModel({**TINY_CONFIG, **config}).eval()


def make_classifier(seed=0, num_classes=2, **config):
    """A tiny GPT after the lecture's surgery, its head scaled up so that the classes' scores differ clearly."""
    model = prepare_for_classification(make_gpt(seed, **config), num_classes=num_classes)
    torch.nn.init.normal_(model.out_head.weight, std=0.5)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_gpt():
    """Factory: ``tiny_gpt(seed=0, **config)``, a fresh tiny GPTModel."""
    return make_gpt


@pytest.fixture(scope="session")
def tiny_classifier():
    """Factory: ``tiny_classifier(seed=0, num_classes=2, **config)``, a fresh tiny classifier."""
    return make_classifier


#: The provenance of a classifier trained to the end with the lecture's settings (650 steps).
FULL_TRAINING = {"engine": "lecture", "steps_done": 650, "steps_planned": 650, "seconds": None,
                 "settings": {"num_epochs": 5, "lr": 5e-5, "weight_decay": 0.1, "eval_freq": 50, "eval_iter": 5}}


def save_checkpoint(model, folder, max_length=20, training=None, **options):
    """``save_classifier`` with the provenance of a complete lecture run unless ``training`` says otherwise."""
    from helpers import save_classifier

    return save_classifier(model, folder, max_length=max_length, training=training or FULL_TRAINING, **options)


@pytest.fixture
def full_training():
    """The provenance of a complete lecture run (a fresh copy)."""
    import copy

    return copy.deepcopy(FULL_TRAINING)


@pytest.fixture(scope="session")
def saved():
    """Factory: ``saved(model, folder, max_length=20, training=None, **options)`` saves a checkpoint."""
    return save_checkpoint


@pytest.fixture(scope="session")
def messages():
    return list(MESSAGES)


@pytest.fixture(scope="session")
def tokenizer():
    return get_gpt2_tokenizer()


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


def _run_cli(*args, stdin=None, env=None):
    """``python -m helpers ARGS`` in a fresh process: the completed process (bytes in and out)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "helpers", *args], input=stdin, capture_output=True,
                          cwd=PROJECT_ROOT, timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def run_cli():
    """Runs ``python -m helpers ARGS`` in a fresh process: ``run_cli("classify", "hello", stdin=b"...")``."""
    return _run_cli


def make_hf_weights(seed=0, **config):
    """Hugging Face GPT-2 tensors (random, the layout of OpenAI's ``model.safetensors``) for ``TINY_CONFIG``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = {**TINY_CONFIG, **config}
    torch.manual_seed(seed)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=cfg["vocab_size"], n_positions=cfg["context_length"],
                                    n_embd=cfg["emb_dim"], n_layer=cfg["n_layers"], n_head=cfg["n_heads"]))
    return {name.removeprefix("transformer."): tensor.clone() for name, tensor in hf.state_dict().items()
            if name.startswith("transformer.")}


@pytest.fixture(scope="session")
def hf_weights():
    """Factory: ``hf_weights(seed=0, **config)``, GPT-2 tensors as Hugging Face stores them, random."""
    return make_hf_weights


@pytest.fixture(scope="session")
def executed_notebook(request, tmp_path_factory):
    """``executed_notebook(name)``: the path of ``notebooks/<name>`` executed as CI runs it (test model), with its
    outputs. It is nbval's run of this session when that ran every cell (see the project's conftest.py), else
    the notebook is executed now, once."""
    import nbformat
    from nbclient import NotebookClient

    folder = tmp_path_factory.mktemp("executed")

    def executed(name):
        path = folder / name
        if not path.is_file():
            nb = request.config.workbook_executed.get(name)
            if nb is None:
                source = PROJECT_ROOT / "notebooks" / name
                nb = nbformat.read(source, as_version=4)
                NotebookClient(nb, timeout=900, kernel_name="python3",
                               resources={"metadata": {"path": str(source.parent)}}).execute()
            nbformat.write(nb, path)
        return path

    return executed
