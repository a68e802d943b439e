"""Inference: input rules, batch == single, the CLI, int8 quantization, the activity 4 widget and checker."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import (
    GPTModel,
    check_activity_4,
    classify_review,
    classify_texts,
    get_gpt2_tokenizer,
    prepare_for_classification,
    quantize_int8,
    save_classifier,
    spam_checker,
)
from helpers.paths import PROJECT_ROOT
from helpers.performance import prediction_agreement, serialized_size_mb

TINY = {"vocab_size": 50257, "context_length": 128, "emb_dim": 64, "n_heads": 4, "n_layers": 2,
        "drop_rate": 0.0, "qkv_bias": True}
MESSAGES = ["Free money! Click now!", "Meeting at 3pm today", "Win a free prize today!", "ok",
            "Your package will arrive tomorrow", "URGENT: Claim your reward now!!! Call 09061701461"]


@pytest.fixture(scope="module")
def tokenizer():
    return get_gpt2_tokenizer()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = prepare_for_classification(GPTModel(TINY))
    torch.nn.init.normal_(model.out_head.weight, std=0.5)  # make the two classes' scores differ clearly
    return model.eval()


def test_returns_label_and_probabilities(model, tokenizer):
    label, probabilities = classify_review("Free money!", model, tokenizer, "cpu", max_length=120)
    assert label in (0, 1) and probabilities.shape == (2,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6) and label == int(probabilities.argmax())


def test_same_pipeline_as_training(model, tokenizer):
    text = MESSAGES[-1]
    ids = tokenizer.encode(text)
    padded = torch.tensor([ids + [50256] * (120 - len(ids))])
    with torch.no_grad():
        expected = torch.softmax(model(padded)[0, -1], dim=-1).numpy()
    assert np.allclose(classify_review(text, model, tokenizer, "cpu", max_length=120)[1], expected, atol=1e-6)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["a list"]])
def test_non_string_is_a_type_error(model, tokenizer, bad):
    with pytest.raises(TypeError, match="must be a string"):
        classify_review(bad, model, tokenizer, "cpu", max_length=120)


@pytest.mark.parametrize("empty", ["", "   ", "\n\t "])
def test_empty_message_is_a_value_error(model, tokenizer, empty):
    with pytest.raises(ValueError, match="empty"):
        classify_review(empty, model, tokenizer, "cpu", max_length=120)
    with pytest.raises(ValueError, match="empty"):
        classify_texts(["fine", empty], model, tokenizer, "cpu", max_length=120)


def test_long_text_is_truncated_not_refused(model, tokenizer):
    long_text = "win cash now " * 500  # 1500 tokens, longer than the test model's 128-token context
    head = tokenizer.decode(tokenizer.encode(long_text)[:120])
    assert np.allclose(classify_review(long_text, model, tokenizer, "cpu", max_length=120)[1],
                       classify_review(head, model, tokenizer, "cpu", max_length=120)[1], atol=1e-6)
    assert classify_review(long_text, model, tokenizer, "cpu")[1].shape == (2,)  # context-length cut


@pytest.mark.parametrize("text", ["🎉🎉 You won!! 🎁", "Café à São Paulo — naïve façade", "bell\x07 null\x00 tab\t",
                                  "write <|endoftext|> here", "\ud800 lone surrogate", "中文短信测试"])
def test_any_unicode_works(model, tokenizer, text):
    label, probabilities = classify_review(text, model, tokenizer, "cpu", max_length=120)
    assert label in (0, 1) and np.isfinite(probabilities).all()


@pytest.mark.parametrize("max_length", [120, None])
def test_batch_equals_single(model, tokenizer, max_length):
    labels, probabilities = classify_texts(MESSAGES, model, tokenizer, "cpu", max_length=max_length, batch_size=4)
    for text, label, p in zip(MESSAGES, labels, probabilities):
        single_label, single_p = classify_review(text, model, tokenizer, "cpu", max_length=max_length)
        assert label == single_label and np.allclose(p, single_p, atol=1e-5)
    with pytest.raises(TypeError):
        classify_texts("one string", model, tokenizer, "cpu")
    assert classify_texts([], model, tokenizer, "cpu")[0].shape == (0,)


def test_int8_quantization_agrees_and_shrinks(model, tokenizer):
    quantized = quantize_int8(model)
    quantized_linears = [m for m in quantized.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    assert len(quantized_linears) == sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    batches = []
    for start in range(0, len(MESSAGES), 3):
        chunk = [tokenizer.encode(t)[:40] for t in MESSAGES[start:start + 3]]
        batches.append((torch.tensor([ids + [50256] * (40 - len(ids)) for ids in chunk]), torch.tensor([1, 0, 1])))
    assert prediction_agreement(model, quantized, batches, "cpu")["agreement"] >= 5 / 6
    wide = prepare_for_classification(GPTModel({**TINY, "vocab_size": 1000, "emb_dim": 128}))
    assert serialized_size_mb(quantize_int8(wide)) < 0.5 * serialized_size_mb(wide)  # Linear weights dominate


def test_widget_builds_and_classifies_without_a_front_end(model, tokenizer):
    box = spam_checker(model, tokenizer, "cpu", 120, initial_text="Free money!")
    label, probabilities = box.check("Free money!")
    assert box.children[1].children[1].value == pytest.approx(float(probabilities[1]))
    assert ("Spam" if label == 1 else "Ham") in box.children[2].value
    assert box.check("   ") is None and "empty" in box.children[2].value


def test_activity_4(model, tokenizer, capsys):
    kwargs = dict(model=model, tokenizer=tokenizer, device="cpu", max_length=120)
    assert check_activity_4(**kwargs) is False
    assert "not attempted yet: my_spam, my_ham" in capsys.readouterr().out
    assert check_activity_4("just one string", ["ok"], **kwargs) is False
    assert "should be a non-empty list" in capsys.readouterr().out
    namespace = {}
    exec((PROJECT_ROOT / "notebooks" / "solutions" / "activity_4.py").read_text(), namespace)
    assert check_activity_4(namespace["my_spam"], namespace["my_ham"], **kwargs) is True
    out = capsys.readouterr().out
    assert "The model agreed with you on" in out and "P(spam)" in out


# --------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    return save_classifier(model, tmp_path_factory.mktemp("ckpt"), max_length=120)


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "helpers", "classify", *args], input=stdin, capture_output=True,
                          text=True, cwd=PROJECT_ROOT, timeout=120)


def test_cli_classifies_arguments(checkpoint, model, tokenizer):
    result = run_cli("--checkpoint", str(checkpoint), MESSAGES[0], MESSAGES[1])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, MESSAGES[:2]):
        label, p_spam, message = line.split("\t")
        expected_label, expected_p = classify_review(text, model, tokenizer, "cpu", max_length=120)
        assert message == text and label == ("spam" if expected_label else "ham")
        assert float(p_spam) == pytest.approx(float(expected_p[1]), abs=1e-3)


def test_cli_reads_stdin_lines(checkpoint):
    result = run_cli("--checkpoint", str(checkpoint), stdin="first message\n\nsecond message\n")
    assert result.returncode == 0
    assert [line.split("\t")[2] for line in result.stdout.splitlines()] == ["first message", "second message"]
    assert "skipping blank line 2" in result.stderr


def test_cli_errors(checkpoint, tmp_path):
    missing = run_cli("--checkpoint", str(tmp_path / "nothing"), "hello")
    assert missing.returncode == 2 and "no classifier checkpoint" in missing.stderr and missing.stdout == ""
    empty = run_cli("--checkpoint", str(checkpoint), "hello", "  ")
    assert empty.returncode == 2 and "message 2 is empty" in empty.stderr
    nothing = run_cli("--checkpoint", str(checkpoint), stdin="")
    assert nothing.returncode == 2 and "nothing to classify" in nothing.stderr
