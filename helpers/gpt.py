"""GPT-2 in one short file, with the lecture's names (``trf_blocks``, ``final_norm``, ``out_head``).

Numerically it is OpenAI's GPT-2: pre-LayerNorm transformer blocks, learned positional
embeddings, tanh-approximated GELU and an output head tied to the token embedding. Like nanoGPT's
``flash`` flag, one plain ``if`` lets attention run PyTorch's fused kernel for the same math.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

BASE_CONFIG = {
    "vocab_size": 50257,     # GPT-2's BPE vocabulary
    "context_length": 1024,  # the longest input GPT-2 was trained on
    "drop_rate": 0.0,        # dropout off, as in the book's fine-tuning
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
    """Normalise each token's vector to mean 0 and variance 1, then scale and shift (both learned)."""

    def __init__(self, emb_dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        norm_x = (x - mean) / torch.sqrt(var + self.eps)
        return self.scale * norm_x + self.shift


class MultiHeadAttention(nn.Module):
    """Causal self-attention: each position looks only at itself and earlier positions.

    ``flash = True`` hands the same math to PyTorch's fused ``scaled_dot_product_attention``
    (equal up to float rounding, and faster); ``flash = False`` runs the written-out version.
    """

    flash = True

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        if d_out % num_heads:
            raise ValueError(f"emb_dim {d_out} must be divisible by n_heads {num_heads}")
        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1),
                             persistent=False)

    def forward(self, x):
        b, num_tokens, d_in = x.shape
        # [b, num_tokens, d_out] -> [b, num_heads, num_tokens, head_dim]
        queries = self.W_query(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        keys = self.W_key(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = self.W_value(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)

        if self.flash:
            dropout_p = self.dropout.p if self.training else 0.0
            context_vec = F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p, is_causal=True)
        else:
            attn_scores = queries @ keys.transpose(2, 3)
            mask_bool = self.mask.bool()[:num_tokens, :num_tokens]
            attn_scores.masked_fill_(mask_bool, -torch.inf)
            attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
            attn_weights = self.dropout(attn_weights)
            context_vec = attn_weights @ values

        context_vec = context_vec.transpose(1, 2).contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context_vec)


class FeedForward(nn.Module):
    """Linear (emb_dim → 4 · emb_dim), tanh-approximated GELU, Linear back to emb_dim (768 → 3072 → 768)."""

    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),
        )

    def forward(self, x):
        return self.layers(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = MultiHeadAttention(d_in=cfg["emb_dim"], d_out=cfg["emb_dim"], context_length=cfg["context_length"],
                                      num_heads=cfg["n_heads"], dropout=cfg["drop_rate"], qkv_bias=cfg["qkv_bias"])
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        shortcut = x
        x = self.norm1(x)
        x = self.att(x)
        x = self.drop_shortcut(x)
        x = x + shortcut

        shortcut = x
        x = self.norm2(x)
        x = self.ff(x)
        x = self.drop_shortcut(x)
        return x + shortcut


class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        check_config(cfg)
        self.cfg = dict(cfg)
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        self.out_head.weight = self.tok_emb.weight  # GPT-2 ties its output head to the token embedding

    def forward(self, in_idx):
        batch_size, seq_len = in_idx.shape
        tok_embeds = self.tok_emb(in_idx)
        pos_embeds = self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = self.drop_emb(tok_embeds + pos_embeds)
        x = self.trf_blocks(x)
        x = self.final_norm(x)
        return self.out_head(x)


def check_config(cfg):
    """A clear error for a config that lacks a key (a model cannot be built from it)."""
    missing = [key for key in CONFIG_KEYS if key not in cfg]
    if missing:
        raise ValueError(f"the model config lacks {missing}; start from get_model_config(...)")


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters; a tied tensor counts once."""
    params = list(model.parameters())  # shared (tied) parameters appear once here
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# --------------------------------------------------------------------------- text generation
def text_to_token_ids(text, tokenizer):
    """``text`` as a ``[1, n]`` tensor of token ids."""
    encoded = tokenizer.encode(text, allowed_special={"<|endoftext|>"})
    return torch.tensor(encoded).unsqueeze(0)  # add the batch dimension


def token_ids_to_text(token_ids, tokenizer):
    return tokenizer.decode(token_ids.squeeze(0).tolist())  # remove the batch dimension


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """Append ``max_new_tokens`` tokens to ``idx`` (``[batch, n]``), each time the most likely one (greedy)."""
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -context_size:]  # no more than the model can read
        with torch.no_grad():
            logits = model(idx_cond)
        logits = logits[:, -1, :]  # only the last position predicts the next token
        probas = torch.softmax(logits, dim=-1)
        idx_next = torch.argmax(probas, dim=-1, keepdim=True)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def generate(model, tokenizer, start_context, max_new_tokens=25):
    """Continue ``start_context`` by ``max_new_tokens`` tokens and return the whole text (as on the slides)."""
    check_language_model(model)
    model.eval()
    device = next(model.parameters()).device
    encoded = text_to_token_ids(start_context, tokenizer).to(device)
    token_ids = generate_text_simple(model, encoded, max_new_tokens, context_size=model.cfg["context_length"])
    return token_ids_to_text(token_ids, tokenizer)


def check_language_model(model):
    """A clear error when ``model`` cannot generate text: its head predicts classes, not tokens."""
    classes, vocab = model.out_head.out_features, model.cfg["vocab_size"]
    if classes != vocab:
        raise ValueError(f"this model's head predicts {classes} classes, not the {vocab} tokens of the vocabulary: "
                         "it is a classifier and cannot generate text. Generate with the pretrained model, "
                         "before the surgery (download_and_load_gpt2).")
