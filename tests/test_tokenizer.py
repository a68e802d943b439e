import inspect
import os

import pytest
import tiktoken_ext.openai_public as openai_public

from helpers import TokenizerFileError, get_gpt2_tokenizer
from helpers.tokenizer import ENCODER_JSON_SHA256, GPT2_PATTERN, VOCAB_BPE_SHA256, bpe_files, build_gpt2_encoding


def test_known_token_ids():
    tokenizer = get_gpt2_tokenizer()
    assert tokenizer.encode("Hello") == [15496]
    assert tokenizer.encode("<|endoftext|>", allowed_special={"<|endoftext|>"}) == [50256]
    assert tokenizer.n_vocab == 50257
    text = "Every effort moves you 🚀 naïve café"
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_pins_are_tiktokens_own():
    # the constants we check against are the ones tiktoken pins for "gpt2"
    source = inspect.getsource(openai_public.gpt2)
    assert VOCAB_BPE_SHA256 in source and ENCODER_JSON_SHA256 in source
    assert GPT2_PATTERN == openai_public.r50k_pat_str


def test_wrong_hash_is_a_clear_error(tmp_path):
    vocab, encoder = bpe_files()
    tampered = tmp_path / "vocab.bpe"
    tampered.write_bytes(vocab.read_bytes() + b"x y\n")
    with pytest.raises(TokenizerFileError, match="sha256.*reinstall"):
        build_gpt2_encoding(tampered, encoder)
    with pytest.raises(TokenizerFileError, match="not found"):
        build_gpt2_encoding(vocab, tmp_path / "encoder.json")


def test_nothing_is_cached_outside_the_project(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    build_gpt2_encoding(*bpe_files())
    assert list(tmp_path.iterdir()) == []
    assert "TIKTOKEN_CACHE_DIR" not in os.environ
