"""The engine's own versions of the lecture's transformer blocks, and the last block at one position.

:class:`TrunkBlock` computes what a frozen :class:`helpers.gpt.TransformerBlock` computes, from that
block's weights (read as they are in float32, cast once into its own copy in bfloat16), with
PyTorch's fused LayerNorm and attention and the fused linear + GELU of :mod:`helpers.fast.kernels`.
The lecture's classes are only read, never changed or patched.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..gpt import FeedForward, LayerNorm, MultiHeadAttention
from .kernels import linear_gelu


def is_plain_block(block) -> bool:
    """True for a lecture block whose layers are all the lecture's own (no LoRA, no int8, nothing replaced)."""
    att, ff = block.att, block.ff
    if not (type(att) is MultiHeadAttention and type(ff) is FeedForward and len(ff.layers) == 3
            and type(block.norm1) is LayerNorm and type(block.norm2) is LayerNorm):
        return False
    linears = (att.W_query, att.W_key, att.W_value, att.out_proj, ff.layers[0], ff.layers[2])
    gelu = ff.layers[1]
    return all(type(linear) is nn.Linear for linear in linears) and type(gelu) is nn.GELU and gelu.approximate == "tanh"


class TrunkBlock(nn.Module):
    """A frozen transformer block, computed by the engine (no gradients) from the block's weights.

    In the weights' own dtype it reads their tensors (a wrapper: nothing is copied). In bfloat16 it
    casts them once into its own copy (autocast would cast every frozen weight again for every batch),
    with the query, key and value projections stacked into one matrix (one multiply instead of three);
    the matrix multiplies and attention run in bfloat16 while the LayerNorms and the residual stream
    stay float32, as under autocast. Equal to the block up to float rounding (tested).
    """

    def __init__(self, block, dtype=None):
        super().__init__()
        if not is_plain_block(block):
            raise TypeError("TrunkBlock copies only the lecture's plain TransformerBlock (no LoRA, no int8 layers)")
        att, (fc1, _, fc2) = block.att, block.ff.layers
        native = block.norm1.scale.dtype
        self.dtype = native if dtype is None else dtype
        self.num_heads, self.head_dim = att.num_heads, att.head_dim
        copy = self.dtype != native  # in the weights' own dtype it reads their tensors; otherwise its own copy
        stream = native if not copy else torch.float32  # LayerNorms and the residual stream: float32 under bf16

        def own(tensor, as_dtype=self.dtype):
            return None if tensor is None else tensor.detach().to(as_dtype, copy=copy)

        self.norms = [(own(norm.scale, stream), own(norm.shift, stream), norm.eps) for norm in (block.norm1, block.norm2)]
        projections = (att.W_query, att.W_key, att.W_value)
        if not copy:
            self.qkv = [(p.weight.detach(), None if p.bias is None else p.bias.detach()) for p in projections]
        else:  # stacked: one multiply instead of three
            self.qkv = [(torch.cat([p.weight.detach() for p in projections]).to(self.dtype),
                         None if att.W_query.bias is None
                         else torch.cat([p.bias.detach() for p in projections]).to(self.dtype))]
        self.out_proj, self.fc1, self.fc2 = ((own(linear.weight), own(linear.bias)) for linear in (att.out_proj, fc1, fc2))

    @torch.no_grad()
    def forward(self, x):
        """``x``: the residual stream, ``[batch, tokens, emb_dim]`` (float32 under bfloat16)."""
        normed = F.layer_norm(x, x.shape[-1:], *self.norms[0][:2], eps=self.norms[0][2]).to(self.dtype)
        x = x + F.linear(self._attention(normed), *self.out_proj)  # float32 + bf16 stays float32
        normed = F.layer_norm(x, x.shape[-1:], *self.norms[1][:2], eps=self.norms[1][2]).to(self.dtype)
        return x + F.linear(linear_gelu(normed, *self.fc1), *self.fc2)

    def _attention(self, normed):
        """Causal attention: ``[batch, tokens, emb_dim]`` in and out."""
        batch, tokens, _ = normed.shape
        heads, head_dim = self.num_heads, self.head_dim
        if len(self.qkv) == 1:  # stacked: one multiply
            stacked = F.linear(normed, *self.qkv[0]).view(batch, tokens, 3, heads, head_dim)
            queries, keys, values = stacked.permute(2, 0, 3, 1, 4)
        else:
            queries, keys, values = (F.linear(normed, weight, bias).view(batch, tokens, heads, head_dim).transpose(1, 2)
                                     for weight, bias in self.qkv)
        context = F.scaled_dot_product_attention(queries, keys, values, is_causal=True)
        return context.transpose(1, 2).reshape(batch, tokens, heads * head_dim)


def trunk_blocks(model, dtype=None) -> list:
    """The frozen blocks (all but the last) as :class:`TrunkBlock` (in ``dtype``, by default the weights' own);
    a block that is not the lecture's plain block runs as it is."""
    return [TrunkBlock(block, dtype) if is_plain_block(block) else block for block in model.trf_blocks[:-1]]


def trunk_blocks_one_at_a_time(model, dtype):
    """The frozen blocks as :func:`trunk_blocks` gives them, each made when it is reached and let go after it:
    in bfloat16, one block's copy (14 MB for GPT-2 small) at a time instead of all of them (0.17 GB)."""
    for block in model.trf_blocks[:-1]:
        yield TrunkBlock(block, dtype) if is_plain_block(block) else block


@torch.no_grad()
def trunk_forward(model, input_ids, blocks=None):
    """Embeddings and every transformer block but the last: the frozen part of the classifier."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    x = model.drop_emb(model.tok_emb(input_ids) + model.pos_emb(positions))
    for block in blocks if blocks is not None else model.trf_blocks[:-1]:
        x = block(x)
    return x


def last_block_at(block, x, positions):
    """The last transformer block's output at one position per message: ``[batch, 1, emb_dim]``.

    ``x`` holds the block's input at every position; ``positions[i]`` is where message ``i`` is
    read. That position's query attends to positions ``0 … positions[i]``, exactly as the causal
    mask of the full block allows. Dropout is off (checked beforehand).

    The full block projects every position to a key and a value (2 · T · D² multiply-adds per
    message). One query needs less. Write the first LayerNorm as ``n_t = s ⊙ z_t + β``, where
    ``z_t`` is ``x_t`` standardised (mean 0, variance 1: no parameters, so no gradient to carry)
    and ``s``, ``β`` are its trainable scale and shift. For head ``h`` with query ``q``:

        score_t = q · (W_k n_t + b_k) = (s ⊙ W_kᵀ q) · z_t + (q · (W_k β + b_k))
        output  = Σ_t w_t (W_v n_t + b_v) = W_v (s ⊙ Σ_t w_t z_t + β) + b_v      (the w_t sum to 1)

    The bracketed term is the same at every position, and adding one number to every score does
    not change a softmax. We keep only its key-bias part, ``q · b_k``, so that ``b_k`` stays in the
    computation as in the full block: its gradient is zero there too, and AdamW's weight decay
    still shrinks it (a bias left out would get no gradient and no decay). We move the query into input space once
    (``s ⊙ W_kᵀ q``) and mix the standardised inputs before projecting them: T · D · heads + D²
    multiply-adds, and nothing of size T · D needs a gradient. Same function, summed in another order.
    """
    att = block.att
    batch, tokens, emb_dim = x.shape
    heads, head_dim = att.num_heads, att.head_dim
    scale, shift = block.norm1.scale, block.norm1.shift
    rows = torch.arange(batch, device=x.device)
    with torch.no_grad():
        standardized = F.layer_norm(x, (emb_dim,), eps=block.norm1.eps)           # z: [B, T, D]
    query = att.W_query(scale * standardized[rows, positions] + shift)         # [B, D]
    query = query.view(batch, heads, head_dim).transpose(0, 1)                 # [H, B, hd]
    w_key = att.W_key.weight.view(heads, head_dim, emb_dim)
    w_value = att.W_value.weight.view(heads, head_dim, emb_dim)

    query_in_input_space = torch.bmm(query, w_key).transpose(0, 1) * scale     # s ⊙ W_kᵀ q: [B, H, D]
    scores = torch.bmm(query_in_input_space, standardized.transpose(1, 2))     # [B, H, T]
    if att.W_key.bias is not None:  # the same at every position: keeps b_k in the graph (see above)
        scores = scores + (query * att.W_key.bias.view(heads, 1, head_dim)).sum(-1).t()[:, :, None]
    future = torch.arange(tokens, device=x.device)[None, :] > positions[:, None]
    weights = torch.softmax((scores / head_dim**0.5).masked_fill(future[:, None, :], float("-inf")), dim=-1)

    mixed_inputs = torch.bmm(weights, standardized) * scale + shift            # s ⊙ Σ_t w_t z_t + β: [B, H, D]
    context = torch.bmm(w_value, mixed_inputs.permute(1, 2, 0))                # W_v · mixed: [H, hd, B]
    context = context.permute(2, 0, 1).reshape(batch, 1, emb_dim)
    if att.W_value.bias is not None:
        context = context + att.W_value.bias
    out = x[rows, positions].unsqueeze(1) + att.out_proj(context)
    return out + block.ff(block.norm2(out))
