"""GPT-2 in one short file, with the lecture's names (``trf_blocks``, ``final_norm``, ``out_head``).

Numerically it is OpenAI's GPT-2: pre-LayerNorm transformer blocks, learned positional
embeddings, tanh-approximated GELU and an output head tied to the token embedding.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import fused_mlp_hidden

BASE_CONFIG = {
    "vocab_size": 50257,     # GPT-2's BPE vocabulary
    "context_length": 1024,  # the longest input GPT-2 was trained on
    "drop_rate": 0.0,        # dropout off: we fine-tune, and the fast engine relies on it
    "qkv_bias": True,        # GPT-2 has biases in its query/key/value projections
}

model_configs = {
    "gpt2-small (124M)": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},
    "gpt2-medium (355M)": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},
    "gpt2-large (774M)": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},
    "gpt2-xl (1558M)": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},
}

CONFIG_KEYS = ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "drop_rate", "qkv_bias")


def get_model_config(model_size: str) -> dict:
    """``BASE_CONFIG`` merged with the dimensions of one GPT-2 size, e.g. ``"gpt2-small (124M)"``."""
    if model_size not in model_configs:
        raise ValueError(f"unknown model size {model_size!r}; choose one of {list(model_configs)}")
    return {**BASE_CONFIG, **model_configs[model_size]}


class LayerNorm(nn.Module):
    """Normalise each token's vector to mean 0 and variance 1, then scale and shift (learned).

    The math is :meth:`normalize`; ``forward`` runs PyTorch's fused kernel for it
    (``layer_norm``: one pass over the data instead of five), equal up to float rounding.
    """

    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def normalize(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift

    def forward(self, x):
        return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)


def causal_attention(queries, keys, values, dropout=None):
    """The lecture's attention, written out: ``[batch, heads, tokens, head_dim]`` in and out.

    Every query scores every key (scaled dot product), positions after the query are masked
    with -inf, softmax turns each row of scores into weights, and the weights mix the values.
    """
    tokens, head_dim = queries.shape[-2], queries.shape[-1]
    scores = queries @ keys.transpose(-2, -1) / head_dim**0.5
    future = torch.triu(torch.ones(tokens, tokens, dtype=torch.bool, device=queries.device), diagonal=1)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ values


class MultiHeadAttention(nn.Module):
    """Causal self-attention: each position looks only at itself and earlier positions.

    The math is :func:`causal_attention`. ``forward`` hands it to PyTorch's fused kernel
    (``scaled_dot_product_attention``), which computes the same function (up to float rounding)
    without building the mask and the full score matrix. Set ``fused = False`` to run the
    written-out version (it also runs while dropout is active).
    """

    fused = True

    def __init__(self, d_in, d_out, num_heads, dropout=0.0, qkv_bias=False):
        super().__init__()
        if d_out % num_heads:
            raise ValueError(f"emb_dim {d_out} must be divisible by n_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)

    def split_heads(self, x):  # [batch, tokens, d_out] -> [batch, heads, tokens, head_dim]
        batch, tokens, _ = x.shape
        return x.view(batch, tokens, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        batch, tokens, _ = x.shape
        queries, keys, values = (self.split_heads(W(x)) for W in (self.W_query, self.W_key, self.W_value))
        if self.fused and not (self.training and self.dropout.p > 0):
            context = F.scaled_dot_product_attention(queries, keys, values, is_causal=True)
        else:
            context = causal_attention(queries, keys, values, self.dropout)
        return self.out_proj(context.transpose(1, 2).reshape(batch, tokens, -1))


class FeedForward(nn.Module):
    """Linear → tanh-GELU → Linear. Where no gradient flows through it (inference, evaluation, the
    frozen blocks), ``forward`` runs the first Linear and the GELU as one CPU kernel (same function,
    see :mod:`helpers.kernels`); otherwise, or once its layers are replaced or hooked, ``self.layers``."""

    def __init__(self, emb_dim):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(emb_dim, 4 * emb_dim), nn.GELU(approximate="tanh"),
                                    nn.Linear(4 * emb_dim, emb_dim))

    def forward(self, x):
        hidden = fused_mlp_hidden(self.layers, x)
        return self.layers(x) if hidden is None else self.layers[2](hidden)


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.att = MultiHeadAttention(cfg["emb_dim"], cfg["emb_dim"], cfg["n_heads"], cfg["drop_rate"], cfg["qkv_bias"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.ff = FeedForward(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff(self.norm2(x)))


class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        missing = [key for key in CONFIG_KEYS if key not in cfg]
        if missing:
            raise ValueError(f"the model config lacks {missing}; start from get_model_config(...)")
        self.cfg = dict(cfg)
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        self.out_head.weight = self.tok_emb.weight  # GPT-2 ties its output head to the token embedding

    def forward(self, in_idx):
        if in_idx.shape[1] > self.cfg["context_length"]:
            raise ValueError(f"{in_idx.shape[1]} tokens exceed the context length {self.cfg['context_length']}")
        positions = torch.arange(in_idx.shape[1], device=in_idx.device)
        x = self.drop_emb(self.tok_emb(in_idx) + self.pos_emb(positions))
        x = self.final_norm(self.trf_blocks(x))
        return self.out_head(x)


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters; a tied tensor counts once."""
    params = list(model.parameters())  # shared (tied) parameters appear once here
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# --------------------------------------------------------------------------- text generation
def text_to_token_ids(text, tokenizer):
    """``text`` as a ``[1, n]`` tensor of token ids."""
    return torch.tensor(tokenizer.encode(text, allowed_special={"<|endoftext|>"})).unsqueeze(0)


def token_ids_to_text(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze(0).tolist())


@torch.no_grad()
def generate_token_ids(model, idx, max_new_tokens, context_size=None, temperature=0.0, top_k=None, eos_id=None):
    """Append up to ``max_new_tokens`` tokens to ``idx`` (``[batch, n]``), one at a time.

    ``temperature=0`` picks the most likely token (greedy); otherwise tokens are sampled from
    the softmax of ``logits / temperature``, restricted to the ``top_k`` most likely if given.
    """
    context_size = context_size or model.cfg["context_length"]
    model.eval()
    for _ in range(max_new_tokens):
        logits = model(idx[:, -context_size:])[:, -1, :]
        if top_k is not None:
            kth_best = torch.topk(logits, top_k).values[:, -1:]
            logits = logits.masked_fill(logits < kth_best, float("-inf"))
        if temperature > 0.0:
            next_id = torch.multinomial(torch.softmax(logits / temperature, dim=-1), num_samples=1)
        else:
            next_id = logits.argmax(dim=-1, keepdim=True)
        if eos_id is not None and (next_id == eos_id).all():
            break
        idx = torch.cat([idx, next_id], dim=1)
    return idx


def generate(model, tokenizer, start_context, max_new_tokens=25, temperature=0.0, top_k=None, eos_id=None):
    """Continue ``start_context`` with ``max_new_tokens`` tokens and return the whole text (as on the slides)."""
    device = next(model.parameters()).device
    idx = text_to_token_ids(start_context, tokenizer).to(device)
    out = generate_token_ids(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, eos_id=eos_id)
    return token_ids_to_text(out.cpu(), tokenizer)
