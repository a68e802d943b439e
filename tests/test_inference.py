"""Classifying messages: the lecture's classify_review (input rules, the training pipeline) and the engine's
classify_texts (many at once, the same results)."""
import numpy as np
import pytest
import torch

from helpers import classify_review, classify_texts


@pytest.fixture(scope="module")
def model(tiny_classifier):
    return tiny_classifier(emb_dim=64)


def test_returns_label_and_probabilities(model, tokenizer):
    label, probabilities = classify_review("Free money!", model, tokenizer, "cpu", max_length=120)
    assert label in (0, 1) and probabilities.shape == (2,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6) and label == int(probabilities.argmax())


def test_same_pipeline_as_training(model, tokenizer, messages):
    text = messages[-1]  # longer than 120 tokens: cut, as SpamDataset cuts
    ids = tokenizer.encode(text)[:120]
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
    with pytest.raises(ValueError, match="reads at most 128 tokens; pass max_length=120"):
        classify_review(long_text, model, tokenizer, "cpu")  # longer than the context, and no max_length to cut it
    assert classify_texts([long_text], model, tokenizer, "cpu")[1].shape == (1, 2)  # the engine cuts at the context


@pytest.mark.parametrize("text", ["🎉🎉 You won!! 🎁", "Café à São Paulo — naïve façade", "bell\x07 null\x00 tab\t",
                                  "write <|endoftext|> here", "\ud800 lone surrogate", "中文短信测试"])
def test_any_unicode_works(model, tokenizer, text):
    label, probabilities = classify_review(text, model, tokenizer, "cpu", max_length=120)
    assert label in (0, 1) and np.isfinite(probabilities).all()


@pytest.mark.parametrize("max_length", [120, None])
def test_batch_equals_single(model, tokenizer, max_length, messages):
    labels, probabilities = classify_texts(messages, model, tokenizer, "cpu", max_length=max_length, batch_size=4)
    for text, label, p in zip(messages, labels, probabilities):
        single_label, single_p = classify_review(text, model, tokenizer, "cpu", max_length=max_length)
        assert label == single_label and np.allclose(p, single_p, atol=1e-5)
    with pytest.raises(TypeError):
        classify_texts("one string", model, tokenizer, "cpu")
    assert classify_texts([], model, tokenizer, "cpu")[0].shape == (0,)


@pytest.mark.parametrize("bad,error,match", [(-1, ValueError, "at least 1"), (0, ValueError, "at least 1"),
                                             (12.5, TypeError, "whole number"), ("120", TypeError, "whole number"),
                                             (True, TypeError, "whole number")])
def test_bad_max_length_or_batch_size_is_a_clear_error(model, tokenizer, bad, error, match):
    with pytest.raises(error, match=f"max_length.*{match}|{match}"):
        classify_review("hello there", model, tokenizer, "cpu", max_length=bad)
    with pytest.raises(error, match=f"max_length.*{match}|{match}"):
        classify_texts(["hello there"], model, tokenizer, "cpu", max_length=bad)
    with pytest.raises(error, match=f"batch_size.*{match}|{match}"):
        classify_texts(["hello there"], model, tokenizer, "cpu", max_length=20, batch_size=bad)


def test_classify_texts_reads_any_iterable_and_classify_review_names_swapped_arguments(model, tokenizer, messages):
    labels, _ = classify_texts((text for text in messages), model, tokenizer, "cpu", max_length=120)
    assert len(labels) == len(messages)  # a generator is read once, not used up by the input check
    with pytest.raises(TypeError, match="tokenizer must be a tokenizer object"):
        classify_review("hello", model, "gpt2", "cpu", max_length=120)
    with pytest.raises(TypeError, match="model must be the classifier.*order"):
        classify_review("hello", tokenizer, model, "cpu", max_length=120)


def test_a_model_without_the_surgery_is_refused_before_it_classifies(tiny_gpt, tokenizer):
    """It used to return label 50256 (a token id) as the predicted class."""
    language_model = tiny_gpt()
    for call in (lambda: classify_review("Free money", language_model, tokenizer, "cpu", max_length=20),
                 lambda: classify_texts(["Free money"], language_model, tokenizer, "cpu")):
        with pytest.raises(ValueError, match="still predicts the 50257 tokens.*prepare_for_classification"):
            call()
