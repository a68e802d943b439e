"""Every file and input defended (issue 15): one test per reproduced failure, numbered as in the issue."""
import errno
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from helpers import (
    CheckpointError,
    DatasetError,
    GPTModel,
    TrunkCache,
    WeightsError,
    classify_review,
    classify_texts,
    download_sms_spam_dataset,
    get_gpt2_tokenizer,
    load_classifier,
    load_weights_into_gpt,
    prepare_for_classification,
    save_classifier,
)
from helpers.checkpoint import RECIPE_FILE, WEIGHTS_FILE
from helpers.cli import escape_field, split_lines
from helpers.fast import top_logits
from helpers.files import CorruptFileError, checksum_path, read_json, write_checked, write_json
from helpers.paths import PROJECT_ROOT, StorageError, data_dir
from helpers.weights import _expected_shapes

TINY = {"vocab_size": 50257, "context_length": 128, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
        "drop_rate": 0.0, "qkv_bias": True}
MESSAGES = ["Free money! Click now!", "Meeting at 3pm today", "Win a free prize today!", "ok",
            "Your package will arrive tomorrow", "URGENT: Claim your reward now!!! Call 09061701461 " * 8]


@pytest.fixture(scope="module")
def tokenizer():
    return get_gpt2_tokenizer()


def tiny_classifier(seed=0):
    torch.manual_seed(seed)
    model = prepare_for_classification(GPTModel(TINY))
    torch.nn.init.normal_(model.out_head.weight, std=0.5)
    return model.eval()


def run_cli(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "helpers", *args], input=stdin, capture_output=True,
                          cwd=PROJECT_ROOT, timeout=120, env={**os.environ, **(env or {})})


# --------------------------------------------------------------------------- 1. tensors that do not fit the recipe
def test_1_checkpoint_whose_tensors_do_not_match_its_recipe_is_a_clear_error(tmp_path):
    folder = save_classifier(tiny_classifier(), tmp_path / "ckpt", max_length=20)
    tensors = dict(tiny_classifier().state_dict())
    tensors.pop("final_norm.scale")
    tensors["something.else"] = torch.zeros(3)
    write_checked(folder / WEIGHTS_FILE, writer=lambda tmp: save_file(tensors, tmp))  # checksum fits, content not
    with pytest.raises(CheckpointError, match=r"does not fit its recipe \(missing \['final_norm.scale'\], "
                                              r"unexpected \['something.else'\]\)"):
        load_classifier(folder)
    result = run_cli("classify", "--checkpoint", str(folder), "hello")
    assert result.returncode == 2 and b"does not fit its recipe" in result.stderr and b"Traceback" not in result.stderr


# --------------------------------------------------------------------------- 2. the checkpoint's reading rule
def _padded(tokenizer, texts, max_length):
    ids = [tokenizer.encode(t)[:max_length] for t in texts]
    return torch.tensor([row + [50256] * (max_length - len(row)) for row in ids])


@pytest.mark.parametrize("mode,pooling", [("exact", "last"), ("flexible", "last_real")])
def test_2_a_checkpoint_is_read_as_it_was_trained(tmp_path, tokenizer, mode, pooling):
    """What the fast engine trained on (its logits) is what classify_texts / classify_review / the CLI read."""
    model = tiny_classifier()
    rows = _padded(tokenizer, MESSAGES, 20)  # the long message is truncated to 20 tokens
    with torch.no_grad():
        trained_view = torch.softmax(top_logits(model, TrunkCache(model, mode), rows)[:, 0], -1).numpy()
    folder = save_classifier(model, tmp_path / mode, max_length=20, pooling=pooling)
    loaded, recipe = load_classifier(folder)
    assert recipe["pooling"] == pooling and loaded.reading_rule["max_length"] == 20
    labels, probabilities = classify_texts(MESSAGES, loaded, tokenizer, "cpu", batch_size=4)  # no max_length
    assert np.allclose(probabilities, trained_view, atol=1e-5)
    assert np.allclose(classify_review(MESSAGES[-1], loaded, tokenizer, "cpu")[1], trained_view[-1], atol=1e-5)
    result = run_cli("classify", "--checkpoint", str(folder), stdin="\n".join(MESSAGES).encode())
    assert result.returncode == 0, result.stderr
    p_spam = [float(line.split(b"\t")[1]) for line in result.stdout.splitlines()]
    assert np.allclose(p_spam, trained_view[:, 1], atol=2e-3)


def test_2_a_max_length_that_contradicts_the_checkpoint_is_refused(tmp_path, tokenizer):
    loaded, _ = load_classifier(save_classifier(tiny_classifier(), tmp_path / "c", max_length=20))
    with pytest.raises(ValueError, match="padded to 20 tokens.*max_length=60"):
        classify_review("hello", loaded, tokenizer, "cpu", max_length=60)
    assert classify_review("hello", loaded, tokenizer, "cpu", max_length=20)[0] in (0, 1)


# --------------------------------------------------------------------------- 3. small files written in place
def test_3_a_write_killed_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "runs" / "exact.json"
    write_json(path, {"seconds": 1})

    def dies_midway(tmp):
        with open(tmp, "wb") as f:
            f.write(b'{"seconds": ')
        raise KeyboardInterrupt  # kill -9 stand-in: the writer stops half way

    with pytest.raises(KeyboardInterrupt):
        write_checked(path, writer=dies_midway)
    assert read_json(path) == {"seconds": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["exact.json", "exact.json.sha256"]  # no .part left


@pytest.mark.parametrize("content", [b"", b'{"seconds": 1', b"[]", b'{"date": "x"}'])
def test_3_a_half_written_or_foreign_file_is_never_trusted(tmp_path, content):
    path = tmp_path / "report.json"
    path.write_bytes(content)  # what an in-place write killed midway leaves (no checksum, or a wrong one)
    with pytest.raises(CorruptFileError, match="report.json"):
        read_json(path)
    write_json(path, {"ok": 1})
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match="does not match its checksum"):
        read_json(path)


# The same for a whole `prepare`: tests/test_instructor.py empties runs/exact.json, performance.csv and
# report.json after a prepare, and checks that instructor mode refuses them and the next prepare rebuilds them.


# --------------------------------------------------------------------------- 4. corrupted trunk cache
def _cache_and_rows(tokenizer):
    model = tiny_classifier()
    rows = _padded(tokenizer, MESSAGES, 20)
    return model, rows, TrunkCache(model, "exact").add(rows)


@pytest.mark.parametrize("damage", ["truncate", "wrong values"])
def test_4_a_corrupted_trunk_cache_is_deleted_and_rebuilt(tmp_path, tokenizer, capsys, damage):
    model, rows, cache = _cache_and_rows(tokenizer)
    path = cache.save(tmp_path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    else:  # a valid safetensors file with other values
        tensors = {"rows": rows, "lengths": torch.full((len(rows),), 20),
                   "activations": torch.zeros(len(rows) * 20, TINY["emb_dim"])}
        save_file(tensors, str(path))
    fresh = TrunkCache(model, "exact")
    assert fresh.load(tmp_path) is False and len(fresh) == 0
    assert "will be rebuilt" in capsys.readouterr().out and not path.exists()
    fresh.add(rows).save(tmp_path)
    again = TrunkCache(model, "exact")
    assert again.load(tmp_path) and torch.equal(again.lookup(rows, "cpu")[0], cache.lookup(rows, "cpu")[0])


# --------------------------------------------------------------------------- 5. max_length and batch_size
@pytest.mark.parametrize("bad,error,match", [(-1, ValueError, "at least 1"), (0, ValueError, "at least 1"),
                                             (12.5, TypeError, "whole number"), ("120", TypeError, "whole number"),
                                             (True, TypeError, "whole number")])
def test_5_bad_max_length_or_batch_size_is_a_clear_error(tokenizer, bad, error, match):
    model = tiny_classifier()
    with pytest.raises(error, match=f"max_length.*{match}|{match}"):
        classify_review("hello there", model, tokenizer, "cpu", max_length=bad)
    with pytest.raises(error, match=f"max_length.*{match}|{match}"):
        classify_texts(["hello there"], model, tokenizer, "cpu", max_length=bad)
    with pytest.raises(error, match=f"batch_size.*{match}|{match}"):
        classify_texts(["hello there"], model, tokenizer, "cpu", max_length=20, batch_size=bad)


# --------------------------------------------------------------------------- 6. recipe validation
BAD_RECIPES = {
    "null": (None, "not a recipe"),
    "n_heads 0": ({"config": {"n_heads": 0}}, "config.n_heads is 0"),
    "n_heads not a divisor": ({"config": {"n_heads": 5}}, "config.n_heads is 5.*divisor"),
    "string number": ({"config": {"emb_dim": "32"}}, 'config.emb_dim is "32"'),
    "vocab 1e9": ({"config": {"vocab_size": 1e9}}, "config.vocab_size is 1000000000.0"),
    "vocab huge int": ({"config": {"vocab_size": 900_000}}, "cannot be loaded into the model its recipe describes"),
    "max_length string": ({"max_length": "120"}, 'max_length is "120"'),
    "max_length 0": ({"max_length": 0}, "max_length is 0"),
    "num_classes 1": ({"num_classes": 1}, "num_classes is 1"),
    "pooling": ({"pooling": "mean"}, 'pooling is "mean"'),
    "pad id": ({"pad_token_id": -1}, "pad_token_id is -1"),
    "qkv_bias": ({"config": {"qkv_bias": "yes"}}, "config.qkv_bias"),
    "drop_rate": ({"config": {"drop_rate": 2}}, "config.drop_rate is 2"),
    "missing key": ({"model_name": None}, "model_name is null"),
}


@pytest.mark.parametrize("case", BAD_RECIPES, ids=list(BAD_RECIPES))
def test_6_every_recipe_field_is_validated(tmp_path, case):
    folder = save_classifier(tiny_classifier(), tmp_path / "ckpt", max_length=20)
    change, match = BAD_RECIPES[case]
    recipe = read_json(folder / RECIPE_FILE)
    if change is None:
        recipe = None
    else:
        for key, value in change.items():
            if isinstance(value, dict):
                recipe[key] |= value
            else:
                recipe[key] = value
    write_json(folder / RECIPE_FILE, recipe)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=match):
            load_classifier(folder)
        assert tracemalloc.get_traced_memory()[1] < 50e6  # refused before allocating the model it describes
    finally:
        tracemalloc.stop()


def test_6_cli_exit_status_2_for_a_bad_recipe(tmp_path):
    folder = save_classifier(tiny_classifier(), tmp_path / "ckpt", max_length=20)
    write_json(folder / RECIPE_FILE, read_json(folder / RECIPE_FILE) | {"num_classes": "2"})
    result = run_cli("classify", "--checkpoint", str(folder), "hello")
    assert result.returncode == 2 and b"num_classes" in result.stderr and b"Traceback" not in result.stderr


# --------------------------------------------------------------------------- 7. prepare --from only reads
def _hf_weights(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=g) * 0.02 for name, shape in _expected_shapes(cfg).items()}


def test_7_prepare_from_a_read_only_folder_writes_nothing_there(tmp_path, monkeypatch, staged_zip):
    from helpers import instructor

    usb = tmp_path / "usb"
    (usb / "gpt2").mkdir(parents=True)
    shutil.copy(staged_zip, usb / "sms_spam_collection.zip")
    save_file(_hf_weights(TINY), str(usb / "gpt2" / "model.safetensors"))
    monkeypatch.setattr(instructor, "get_model_config", lambda size: dict(TINY))  # GPT-2's layout, tiny
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    monkeypatch.delenv("WORKBOOK_GPT2_DIR", raising=False)
    monkeypatch.delenv("WORKBOOK_SMS_ZIP", raising=False)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in usb.rglob("*")}
    usb_writes = []
    real_write = instructor.write_json
    monkeypatch.setattr(instructor, "write_json", lambda path, obj: usb_writes.append(path) if str(path).startswith(
        str(usb)) else real_write(path, obj))
    for folder in (usb / "gpt2", usb):
        folder.chmod(0o555)  # a read-only stick (root ignores this; the snapshot below does not)
    try:
        instructor._fetch_inputs("gpt2-small (124M)", usb)
        instructor._fetch_inputs("gpt2-small (124M)", usb)  # second time: verified before, nothing to do
    finally:
        for folder in (usb, usb / "gpt2"):
            folder.chmod(0o755)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in usb.rglob("*")} == before and not usb_writes
    assert (tmp_path / "data" / "gpt2" / "gpt2" / "model.safetensors").is_file()


# --------------------------------------------------------------------------- 8. zip bomb
def test_8_zip_bomb_is_refused_while_streaming(tmp_path):
    bomb = tmp_path / "sms_spam_collection.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("SMSSpamCollection", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(64):  # 64 MB of zeros, ~64 KB compressed
                member.write(block)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match="larger than 4 MB"):
            download_sms_spam_dataset(local_copy=bomb, data_folder=tmp_path / "data")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16e6  # the 64 MB member was never held whole
    assert not (tmp_path / "data" / "sms_spam_collection" / "SMSSpamCollection").exists()


# --------------------------------------------------------------------------- 9. corrupted weights
def test_9_weights_corrupted_in_place_are_refused_naming_the_tensor(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(_hf_weights(TINY), str(path))
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    middle = header + (len(data) - header) // 2
    data[middle:middle + 100] = b"\xff" * 100  # 0xFFFFFFFF is a NaN in float32
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"tensor '.*' holds NaN or infinite values"):
        load_weights_into_gpt(GPTModel(TINY), path)


def test_9_integer_and_bool_weights_are_refused_naming_the_tensor():
    tensors = _hf_weights(TINY)
    tensors["h.1.ln_2.bias"] = torch.zeros(TINY["emb_dim"], dtype=torch.int64)
    with pytest.raises(WeightsError, match="'h.1.ln_2.bias' holds int64 values"):
        load_weights_into_gpt(GPTModel(TINY), tensors)
    tensors = _hf_weights(TINY)
    tensors["ln_f.weight"] = torch.ones(TINY["emb_dim"], dtype=torch.bool)
    with pytest.raises(WeightsError, match="'ln_f.weight' holds bool values"):
        load_weights_into_gpt(GPTModel(TINY), tensors)


def test_9_checkpoint_with_non_finite_or_integer_tensors_is_refused(tmp_path):
    model = tiny_classifier()
    with torch.no_grad():
        model.out_head.bias[0] = float("nan")
    with pytest.raises(CheckpointError, match="'out_head.bias' holds NaN"):
        load_classifier(save_classifier(model, tmp_path / "nan", max_length=20))
    tensors = dict(tiny_classifier().state_dict())
    tensors["final_norm.shift"] = torch.zeros(TINY["emb_dim"], dtype=torch.int32)
    folder = save_classifier(tiny_classifier(), tmp_path / "int", max_length=20)
    write_checked(folder / WEIGHTS_FILE, writer=lambda tmp: save_file(tensors, tmp))
    with pytest.raises(CheckpointError, match="'final_norm.shift' holds I32 values"):
        load_classifier(folder)
    corrupted = folder / WEIGHTS_FILE  # bytes flipped after writing: the checksum says so
    save_classifier(tiny_classifier(), folder, max_length=20)
    data = bytearray(corrupted.read_bytes())
    data[-100:] = b"\xff" * 100
    corrupted.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_classifier(folder)


# --------------------------------------------------------------------------- 10. environment and disk
def test_10_unusable_data_folders_are_clear_errors(tmp_path, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(a_file))
    with pytest.raises(StorageError, match="is a file, not a folder"):
        data_dir()
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "gone")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(dangling))
    with pytest.raises(StorageError, match="symbolic link.*does not exist"):
        data_dir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WORKBOOK_DATA_DIR", "~/x")
    assert data_dir() == tmp_path / "home" / "x" and data_dir().is_dir()
    result = run_cli("prepare", "--no-timing", env={"WORKBOOK_DATA_DIR": str(a_file)})
    assert result.returncode == 2 and b"is a file, not a folder" in result.stderr and b"Traceback" not in result.stderr
    result = run_cli("classify", "hello", env={"WORKBOOK_DATA_DIR": str(dangling)})
    assert result.returncode == 2 and b"does not exist" in result.stderr and b"Traceback" not in result.stderr


@pytest.mark.parametrize("code,match", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the file system is read-only")])
def test_10_full_or_read_only_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch, code, match):
    model = tiny_classifier()

    def fails(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("helpers.files.os.fsync", fails)
    with pytest.raises(StorageError, match=f"model.safetensors: {match}"):
        save_classifier(model, tmp_path / "ckpt", max_length=20)
    assert list((tmp_path / "ckpt").iterdir()) == []


# --------------------------------------------------------------------------- 11. the CLI's text
def test_11_only_newlines_split_messages_and_records_stay_on_one_line():
    assert split_lines("one\vtwo\x0cthree\u2028four\r\nfive\n\nsix") == ["one\vtwo\x0cthree\u2028four", "five", "",
                                                                           "six"]
    assert escape_field("a\tb\nc\\d\re\u2028f\x0bg") == "a\\tb\\nc\\\\d\\re\\u2028f\\x0bg"
    assert "\n".join(escape_field(m) for m in ["x\ny", "p\u2028q"]).splitlines() == ["x\\ny", "p\\u2028q"]


@pytest.fixture(scope="module")
def cli_checkpoint(tmp_path_factory):
    return save_classifier(tiny_classifier(), tmp_path_factory.mktemp("cli"), max_length=20)


def test_11_cli_text_handling(cli_checkpoint):
    ckpt = ["classify", "--checkpoint", str(cli_checkpoint)]
    result = run_cli(*ckpt, stdin="first\vstill first\u2028same\r\nsecond\n".encode())
    assert result.returncode == 0, result.stderr
    assert [line.split(b"\t")[2] for line in result.stdout.split(b"\n")[:-1]] == [
        "first\\x0bstill first\\u2028same".encode(), b"second"]
    result = run_cli(*ckpt, "two\nlines\tand a tab")
    assert result.returncode == 0 and result.stdout.count(b"\n") == 1 and result.stdout.count(b"\t") == 2
    assert result.stdout.endswith(b"\ttwo\\nlines\\tand a tab\n")
    result = run_cli(*ckpt, stdin=b"caf\xe9 latin-1\n")
    assert result.returncode == 2 and b"not UTF-8" in result.stderr and b"Traceback" not in result.stderr


def test_11_cli_output_into_a_closed_pipe_ends_quietly(cli_checkpoint):
    messages = ("win a prize " * 300 + "\n") * 100  # far more output than a pipe holds
    process = subprocess.Popen([sys.executable, "-m", "helpers", "classify", "--checkpoint", str(cli_checkpoint)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=PROJECT_ROOT)
    process.stdin.write(messages.encode())
    process.stdin.close()
    first = process.stdout.readline()  # `| head -1`
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0
    assert first.startswith((b"ham\t", b"spam\t")) and b"Traceback" not in stderr and b"BrokenPipe" not in stderr


# --------------------------------------------------------------------------- 12. concurrent saves
def test_12_concurrent_trunk_cache_saves_do_not_collide(tmp_path, tokenizer):
    _, _, cache = _cache_and_rows(tokenizer)
    errors = []

    def save_many():
        try:
            for _ in range(10):
                cache.save(tmp_path)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=save_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([cache.file_for(tmp_path).name,
                                                                 checksum_path(cache.file_for(tmp_path)).name])
    assert TrunkCache(cache.model, "exact").load(tmp_path)
