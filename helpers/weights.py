"""Pretrained GPT-2 weights: Hugging Face safetensors → our ``GPTModel``.

No TensorFlow, no pickle: a ``model.safetensors`` file holds plain tensors, which we copy into
the model after checking that every one is there with the right shape.

Offline practice and CI use an explicit tiny *test model* with random weights, chosen by the
environment variable ``WORKBOOK_TEST_MODEL=1``. It is announced loudly wherever it is used, and
nothing ever falls back to it silently.
"""
import os
import sys
import weakref
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from . import settings
from .gpt import GPTModel, get_model_config
from .storage.download import DownloadError, download_file
from .storage.paths import ENV_GPT2_DIR, ENV_TEST_MODEL, data_dir, display_path, env_flag

HF_REPOS = {
    "gpt2-small (124M)": "gpt2",
    "gpt2-medium (355M)": "gpt2-medium",
    "gpt2-large (774M)": "gpt2-large",
    "gpt2-xl (1558M)": "gpt2-xl",
}
HF_MODEL_PAGE = "https://huggingface.co/openai-community/{repo}/resolve/main/model.safetensors"  # the download
HF_URLS = (
    "https://huggingface.co/openai-community/{repo}/resolve/main/model.safetensors",
    "https://hf-mirror.com/openai-community/{repo}/resolve/main/model.safetensors",  # public mirror
)

TEST_MODEL_CONFIG = {
    "vocab_size": 50257, "context_length": 128, "emb_dim": 64, "n_heads": 4, "n_layers": 2,
    "drop_rate": 0.0, "qkv_bias": True,
}
TEST_MODEL_NOTICE = (
    "TEST MODEL: a tiny GPT with RANDOM weights ({env}=1).",
    "It is not GPT-2: its generated text and every number it produces",
    "are NOT the lecture's. Unset {env} to use the real GPT-2 weights.",
)


class WeightsError(RuntimeError):
    """Weights are missing, corrupted or do not fit the model; the message says what to do."""


def test_model_enabled() -> bool:
    return env_flag(ENV_TEST_MODEL)


_BANNER_SHOWN = weakref.WeakSet()  # the streams the banner went to: once in a notebook (a kernel) is enough


def _banner_shown(stream) -> bool:
    try:
        return stream in _BANNER_SHOWN
    except TypeError:  # a stream that cannot be weakly referenced: show it every time
        return False


def print_test_model_banner(file=None, always=False):
    """The test model's banner, once per output stream (a notebook's kernel shows it once); ``always``: even if it
    was shown there before (a test-model checkpoint says so wherever it is read)."""
    stream = file or sys.stdout
    if _banner_shown(stream) and not always:
        return
    try:
        _BANNER_SHOWN.add(stream)
    except TypeError:
        pass
    lines = [line.format(env=ENV_TEST_MODEL) for line in TEST_MODEL_NOTICE]
    width = max(map(len, lines)) + 4
    box = ["╔" + "═" * width + "╗", *("║  " + line.ljust(width - 2) + "║" for line in lines), "╚" + "═" * width + "╝"]
    print("\n".join(box), file=file)


def model_context_length(model_size=None) -> int:
    """How many tokens the model the workbook uses now can read: the test model's 128 with
    ``WORKBOOK_TEST_MODEL=1``, else the context of ``model_size`` (default ``settings.MODEL_SIZE``; 1,024 for GPT-2)."""
    if test_model_enabled():
        return TEST_MODEL_CONFIG["context_length"]
    return get_model_config(model_size or settings.MODEL_SIZE)["context_length"]


def test_model_note(what):
    """Directly under a result the test model makes meaningless: one short line saying so (``what``: what it is,
    and what GPT-2 gives instead). Prints nothing with GPT-2; with the test model (``WORKBOOK_TEST_MODEL=1``),
    e.g. "⚠ Test model: this verdict is noise; the lecture's GPT-2 classifier calls it spam."."""
    if test_model_enabled():
        print(f"⚠ Test model: {what}")


def build_test_model(seed=123) -> GPTModel:
    """The tiny random test model (context 128 ≥ the 120 tokens we pad to). The first one built in this process
    prints the banner and its configuration, which is not the GPT-2 configuration a notebook may have printed."""
    if not _banner_shown(sys.stdout):
        print_test_model_banner()
        shown = ", ".join(f"{key} {TEST_MODEL_CONFIG[key]}" for key in ("emb_dim", "n_layers", "n_heads",
                                                                         "context_length"))
        print(f"Its configuration: {shown} (GPT-2 small: emb_dim 768, n_layers 12, n_heads 12, "
              "context_length 1024).")
    torch.manual_seed(seed)
    model = GPTModel(TEST_MODEL_CONFIG)
    model.is_test_model = True
    return model.eval()


# --------------------------------------------------------------------------- loading
def _expected_shapes(cfg) -> dict:
    d, v, c = cfg["emb_dim"], cfg["vocab_size"], cfg["context_length"]
    shapes = {"wte.weight": (v, d), "wpe.weight": (c, d), "ln_f.weight": (d,), "ln_f.bias": (d,)}
    for b in range(cfg["n_layers"]):
        shapes |= {
            f"h.{b}.ln_1.weight": (d,), f"h.{b}.ln_1.bias": (d,),
            f"h.{b}.attn.c_attn.weight": (d, 3 * d), f"h.{b}.attn.c_attn.bias": (3 * d,),
            f"h.{b}.attn.c_proj.weight": (d, d), f"h.{b}.attn.c_proj.bias": (d,),
            f"h.{b}.ln_2.weight": (d,), f"h.{b}.ln_2.bias": (d,),
            f"h.{b}.mlp.c_fc.weight": (d, 4 * d), f"h.{b}.mlp.c_fc.bias": (4 * d,),
            f"h.{b}.mlp.c_proj.weight": (4 * d, d), f"h.{b}.mlp.c_proj.bias": (d,),
        }
    return shapes


class GPT2Tensors:
    """GPT-2's tensors by name, from a ``model.safetensors`` file (a path) or a mapping, read one at a time.

    safetensors maps the file into memory, and every tensor read stays in memory until the file is closed.
    So the file is opened for each tensor and closed once it is copied: loading GPT-2 small needs the model's
    500 MB and one tensor at most (154 MB), not the model and the whole file (1 GB). Files saved by
    transformers' save_pretrained prefix every name with "transformer."; the names here have no prefix.
    """

    def __init__(self, source, where):
        self.where, self.path = where, None
        if isinstance(source, (str, Path)):
            self.path = Path(source)
            if not self.path.is_file():
                raise WeightsError(f"weights file not found: {self.path}")
            with self._open() as file:
                self.keys = {key.removeprefix("transformer."): key for key in file.keys()}
                self.shapes = {name: tuple(file.get_slice(key).get_shape()) for name, key in self.keys.items()}
        else:
            self.tensors = {name.removeprefix("transformer."): tensor for name, tensor in dict(source).items()}
            self.shapes = {name: tuple(tensor.shape) for name, tensor in self.tensors.items()}

    @contextmanager
    def _open(self):
        try:
            with safe_open(str(self.path), framework="pt") as file:
                yield file
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{self.where} is not a readable safetensors file ({exc}). It is probably truncated "
                               "or corrupted: delete it and download it again.") from exc

    def __getitem__(self, name):
        if self.path is None:
            tensor = self.tensors[name]
        else:
            with self._open() as file:
                tensor = file.get_tensor(self.keys[name])
        if not tensor.is_floating_point():  # a corrupted file must never pass for a good one
            raise WeightsError(f"{self.where}: tensor {name!r} holds {str(tensor.dtype).removeprefix('torch.')} values, "
                               "not floating-point weights. The file is corrupted or not GPT-2's: delete it and "
                               "download it again.")
        if not all(torch.isfinite(part).all() for part in tensor.reshape(-1).split(1 << 22)):  # in parts: little memory
            raise WeightsError(f"{self.where}: tensor {name!r} holds NaN or infinite values. The file is corrupted: "
                               "delete it and download it again.")
        return tensor

    def matches(self, name, tensor) -> bool:
        """Whether ``tensor`` equals the file's tensor ``name``, compared 16 MB at a time: checking the token
        embedding (154 MB) then needs 16 MB more memory, not 154 MB and the file's pages."""
        if self.path is None or tensor.ndim == 0:
            return torch.equal(tensor, self[name].to(tensor.device))
        if self.shapes.get(name) != tuple(tensor.shape):
            return False
        rows = max(1, (1 << 24) // max(1, tensor[0].numel() * tensor.element_size()))
        for start in range(0, len(tensor), rows):
            with self._open() as file:  # opened for each part: the pages read are let go at once
                part = file.get_slice(self.keys[name])[start:start + rows]
            if not torch.equal(tensor[start:start + rows], part.to(tensor.device)):
                return False
        return True


def _check(tensors, cfg, where):
    """Every tensor the model needs is there, with the right shape (read from the file's header only)."""
    expected = _expected_shapes(cfg)
    missing = [name for name in expected if name not in tensors.shapes]
    if missing:
        raise WeightsError(f"{where} lacks {len(missing)} tensor(s) the model needs, e.g. {missing[:3]}. "
                           f"Is it a GPT-2 file with {cfg['n_layers']} layers?")
    for name, shape in expected.items():
        if tensors.shapes[name] != shape:
            raise WeightsError(f"{where}: tensor {name!r} has shape {list(tensors.shapes[name])}, but this model "
                               f"(emb_dim={cfg['emb_dim']}, n_layers={cfg['n_layers']}) needs {list(shape)}. "
                               "Is the file for another GPT-2 size?")


def _copy(params, target, name, transpose=False):
    value = params[name].T if transpose else params[name]
    target.copy_(value.to(target.dtype))


@torch.no_grad()
def copy_block_weights(block, params, b):
    """Fill transformer block ``block`` with block ``b`` of GPT-2's tensors (a :class:`GPT2Tensors`)."""
    p = f"h.{b}."
    copy = partial(_copy, params)
    q_w, k_w, v_w = params[p + "attn.c_attn.weight"].chunk(3, dim=-1)
    q_b, k_b, v_b = params[p + "attn.c_attn.bias"].chunk(3, dim=-1)
    for layer, w, bias in ((block.att.W_query, q_w, q_b), (block.att.W_key, k_w, k_b), (block.att.W_value, v_w, v_b)):
        layer.weight.copy_(w.T.to(layer.weight.dtype))
        layer.bias.copy_(bias.to(layer.bias.dtype))
    del q_w, k_w, v_w  # the file's c_attn tensor: freed before the next is read
    copy(block.att.out_proj.weight, p + "attn.c_proj.weight", transpose=True)
    copy(block.att.out_proj.bias, p + "attn.c_proj.bias")
    copy(block.ff.layers[0].weight, p + "mlp.c_fc.weight", transpose=True)
    copy(block.ff.layers[0].bias, p + "mlp.c_fc.bias")
    copy(block.ff.layers[2].weight, p + "mlp.c_proj.weight", transpose=True)
    copy(block.ff.layers[2].bias, p + "mlp.c_proj.bias")
    copy(block.norm1.scale, p + "ln_1.weight")
    copy(block.norm1.shift, p + "ln_1.bias")
    copy(block.norm2.scale, p + "ln_2.weight")
    copy(block.norm2.shift, p + "ln_2.bias")
    return block


@torch.no_grad()
def load_weights_into_gpt(model: GPTModel, source) -> GPTModel:
    """Fill ``model`` from a Hugging Face GPT-2 ``model.safetensors`` (a path or a mapping of its tensors).

    Hugging Face keeps GPT-2's original ``Conv1D`` layout (weights stored as [in, out]), so
    those are transposed for ``nn.Linear``; the fused ``c_attn`` is split into query/key/value.
    Tensors are read and copied one at a time (each checked first), so loading needs little memory
    beyond the model's; a corrupted tensor stops it with the model half filled: build a new one.
    """
    where = display_path(source) if isinstance(source, (str, Path)) else "the given tensors"
    params = GPT2Tensors(source, where)
    _check(params, model.cfg, where)
    copy = partial(_copy, params)

    copy(model.tok_emb.weight, "wte.weight")
    copy(model.pos_emb.weight, "wpe.weight")
    for b, block in enumerate(model.trf_blocks):
        copy_block_weights(block, params, b)
    copy(model.final_norm.scale, "ln_f.weight")
    copy(model.final_norm.shift, "ln_f.bias")
    model.out_head.weight = model.tok_emb.weight  # tied, as in GPT-2
    return model


# --------------------------------------------------------------------------- finding the file
def _missing_weights_help(model_size, target) -> str:
    repo = HF_REPOS[model_size]
    return (f"What to do (either):\n"
            f"  • download {HF_MODEL_PAGE.format(repo=repo)} (about 500 MB for GPT-2 small) on a machine with network "
            f"access and put it at {display_path(target)} (or at $WORKBOOK_GPT2_DIR/{repo}/model.safetensors), then "
            f"run this cell again;\n"
            f"  • or practise with the tiny random test model: run `%env {ENV_TEST_MODEL}=1` in a cell (in a shell: "
            f"`export {ENV_TEST_MODEL}=1`), then run this cell again.")


def _what_failed(error) -> str:
    """A download error in one line per address: the last try's reason (the tries repeat it)."""
    last = {}
    for line in str(error).splitlines()[1:]:
        address, _, reason = line.strip().partition(" (try ")
        if address:
            last[address] = reason.split("): ", 1)[-1]
    return "; ".join(f"{address}: {reason}" for address, reason in last.items()) or str(error)


def gpt2_weights_path(model_size, models_dir=None, *, urls=None, timeout=60.0, retries=3) -> Path:
    """The local ``model.safetensors`` for ``model_size``: pre-staged, cached, or downloaded now."""
    get_model_config(model_size)  # validates the name
    repo = HF_REPOS[model_size]
    target = Path(models_dir or data_dir() / "gpt2") / repo / "model.safetensors"
    staged_dir = os.environ.get(ENV_GPT2_DIR)
    if staged_dir:
        for candidate in (Path(staged_dir).expanduser() / repo / "model.safetensors",
                          Path(staged_dir).expanduser() / f"{repo}.safetensors"):
            if candidate.is_file():
                return candidate
    if target.is_file():
        return target
    try:
        return download_file([u.format(repo=repo) for u in urls or HF_URLS], target, timeout=timeout, retries=retries,
                             desc=f"GPT-2 {model_size}")
    except DownloadError as exc:  # one short message, what to do first; the tries' details last
        raise WeightsError(f"The GPT-2 weights for {model_size!r} are not on this machine, and downloading them "
                           f"failed.\n{_missing_weights_help(model_size, target)}\n"
                           f"(What failed: {_what_failed(exc)})") from None


def download_and_load_gpt2(model_size="gpt2-small (124M)", models_dir=None) -> GPTModel:
    """A ``GPTModel`` with OpenAI's pretrained weights for ``model_size``, in eval mode.

    With ``WORKBOOK_TEST_MODEL=1`` it returns the tiny random test model instead, and says so.
    The slide's version also prints a test generation; notebook 3 runs that step in its next cells.
    """
    get_model_config(model_size)  # an unknown size is an error, with the test model too
    if test_model_enabled():
        return build_test_model()
    # Download the weights from Hugging Face once (or use a staged copy), then check and load them
    weights_path = gpt2_weights_path(model_size, models_dir)
    model = GPTModel(get_model_config(model_size))
    load_weights_into_gpt(model, weights_path)
    model.eval()
    model.is_test_model, model.model_size = False, model_size  # what it is, for checkpoints made from it
    return model


# --------------------------------------------------------------------------- device and seeds
def get_device() -> torch.device:
    """CUDA if available, else Apple's MPS (only on torch ≥ 2.9: older versions computed wrong losses), else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    if (major, minor) >= (2, 9) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed=123):
    """Seed Python's, NumPy's and PyTorch's random generators, for reproducible runs."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
