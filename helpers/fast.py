"""A fast fine-tuning engine: run the frozen trunk once, then train only the top.

With the lecture's surgery, the embeddings and the first 11 blocks are frozen and dropout is
off, so they map each message to the same activations in every epoch and every evaluation.
We compute those once (:class:`TrunkCache`) and train the last block, the final LayerNorm and
the head on them. Inside the last block only the position that the loss reads needs a query,
an attention output and an MLP; keys and values are still needed at every position.

:class:`CachedTop` stands in for the model: called on a batch of token ids, it returns logits
of shape ``[batch, 1, classes]``, so the lecture's own ``calc_loss_batch``,
``calc_accuracy_loader`` and ``train_classifier_simple`` run on it unchanged, with the same
batches in the same order.

Two modes:

* ``"exact"``: the lecture's model. It reads position 119 of the padded message, and the
  trained parameters equal those of ``train_classifier_simple`` (up to float rounding).
* ``"flexible"``: a different, better model. It reads the **last real token**, as Hugging
  Face's ``GPT2ForSequenceClassification`` does, and the trunk sees only real tokens (each
  batch is padded just to its longest message). It is faster still, but its numbers are not
  the lecture's.
"""
import copy
import hashlib
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .files import CorruptFileError, remove_checked, verify_checked, write_checked
from .gpt import GPTModel
from .kernels import fused_linear_gelu
from .precision import autocast, resolve_precision
from .training import train_classifier_simple

MODES = ("exact", "flexible")
BF16_BATCH_TOKENS = 2048  # real tokens per batch of a bf16 trunk pass (see TrunkCache._batches)


class FastEngineError(ValueError):
    """The fast engine would not compute the lecture's math for this model."""


def check_fast_engine_applicable(model):
    """Raise :class:`FastEngineError` unless only the last block, final norm and head train, without dropout."""
    if model.cfg["drop_rate"] > 0:
        raise FastEngineError(f"drop_rate is {model.cfg['drop_rate']}: with dropout every pass through the trunk "
                              "differs, so cached activations would change the math. Set drop_rate to 0.")
    last = f"trf_blocks.{len(model.trf_blocks) - 1}."
    outside = [name for name, p in model.named_parameters()
               if p.requires_grad and not name.startswith((last, "final_norm.", "out_head."))]
    if outside:
        raise FastEngineError(f"{len(outside)} trainable parameter tensors lie below the last block (e.g. "
                              f"{outside[:2]}): the trunk would change while training, so it cannot be cached.")


@torch.no_grad()
def trunk_forward(model, input_ids, blocks=None):
    """Embeddings and every transformer block but the last: the frozen part of the classifier.

    ``blocks`` may replace the model's first blocks by an equivalent copy (see :func:`bf16_trunk_blocks`).
    """
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    x = model.drop_emb(model.tok_emb(input_ids) + model.pos_emb(positions))
    for block in blocks if blocks is not None else model.trf_blocks[:-1]:
        x = block(x)
    return x


class Packing:
    """Where the real tokens of a padded batch of messages sit, to compute on them alone.

    The matrix multiplies, LayerNorms and additions of a transformer block treat every token on its
    own, so they can run on the real tokens packed one message after another, ``[n, emb_dim]``,
    with no padding to pay for (in the SMS data, batched by length, padding is ~9 % of the tokens).
    Attention needs the messages side by side: :meth:`pad` lays packed rows out as
    ``[batch, width, features]`` (zeros after each message's end: causal attention never lets a
    real token see what comes after it) and :meth:`pack` takes the real rows back.
    """

    def __init__(self, lengths, width):
        self.batch, self.width = len(lengths), width
        real = torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]   # [batch, width]
        self.index = real.reshape(-1).nonzero().squeeze(1)  # each real token's row in the flattened batch

    def pack(self, padded):
        """``[batch, width, ...]`` → the real tokens, ``[n, ...]``."""
        return padded.reshape(self.batch * self.width, *padded.shape[2:]).index_select(0, self.index)

    def pad(self, packed):
        """The real tokens, ``[n, features]`` → ``[batch, width, features]``, zeros where there is no token."""
        padded = packed.new_zeros(self.batch * self.width, packed.shape[-1]).index_copy_(0, self.index, packed)
        return padded.view(self.batch, self.width, packed.shape[-1])


@torch.no_grad()
def packed_trunk_forward(model, input_ids, lengths, blocks):
    """:func:`trunk_forward` on the real tokens only: ``[sum(lengths), emb_dim]``, message after message.

    ``input_ids`` is a padded batch ``[batch, width]``, message ``i`` being its first ``lengths[i]``
    tokens; ``blocks`` are :class:`Bf16TrunkBlock` copies, which take packed tokens (see :class:`Packing`).
    Each real token's activations are those of :func:`trunk_forward` (tested).
    """
    packing = Packing(lengths, input_ids.shape[1])
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    x = model.drop_emb(model.tok_emb(packing.pack(input_ids)) + model.pos_emb(packing.pack(positions)))
    for block in blocks:
        x = block(x, packing)
    return x


class Bf16TrunkBlock(nn.Module):
    """A frozen transformer block, computed as bf16 autocast computes it, with its weights cast once.

    Autocast would cast every frozen weight to bfloat16 again for every batch (it keeps casts
    only of weights that train), and the first LayerNorm's output three times, once for each of
    the query, key and value projections. This copy casts the weights once and stacks the three
    projections into one matrix (one multiply instead of three). As under autocast, the matrix
    multiplies and attention run in bfloat16 while the LayerNorms and the residual stream stay
    float32. On a CPU the MLP's first multiply and its GELU run as one kernel (:meth:`_fc1_gelu`).
    It agrees with autocast up to bfloat16 rounding, and is as close to float32 (tested).
    """

    def __init__(self, block):
        super().__init__()
        att, (fc1, _, fc2) = block.att, block.ff.layers
        self.norm1, self.norm2 = copy.deepcopy(block.norm1), copy.deepcopy(block.norm2)
        self.num_heads, self.head_dim = att.num_heads, att.head_dim
        self.weights = {}  # name -> (weight, bias) in bfloat16
        projections = (att.W_query, att.W_key, att.W_value)
        qkv = torch.empty(sum(p.out_features for p in projections), att.W_query.in_features,
                          dtype=torch.bfloat16, device=att.W_query.weight.device)
        row = 0
        for projection in projections:  # stacked rows, converted without a float32 copy of the stack
            qkv[row:row + projection.out_features] = projection.weight.detach()
            row += projection.out_features
        qkv_bias = (torch.cat([p.bias.detach() for p in projections]).to(torch.bfloat16)
                    if att.W_query.bias is not None else None)
        self.weights["qkv"] = (qkv, qkv_bias)
        for name, linear in (("out_proj", att.out_proj), ("fc1", fc1), ("fc2", fc2)):
            self.weights[name] = (linear.weight.detach().to(torch.bfloat16),
                                  None if linear.bias is None else linear.bias.detach().to(torch.bfloat16))

    def _linear(self, name, x):
        weight, bias = self.weights[name]
        return F.linear(x, weight, bias)

    def forward(self, x, packing=None):
        """``x``: ``[batch, tokens, emb_dim]``; or, with a :class:`Packing`, only the real tokens of such a
        batch, ``[n, emb_dim]``: then only the query/key/value multiply and attention see the padding
        (laying out 768 normalised features per token costs less than 2304 projected ones, measured)."""
        normed = self.norm1(x).to(torch.bfloat16)
        context = self._attention(self._linear("qkv", normed if packing is None else packing.pad(normed)))
        x = x + self._linear("out_proj", context if packing is None else packing.pack(context))  # float32 + bf16
        hidden = self._fc1_gelu(self.norm2(x).to(torch.bfloat16))
        return x + self._linear("fc2", hidden)

    def _attention(self, qkv):
        """Causal attention from stacked queries, keys and values ``[batch, tokens, 3 · emb_dim]``."""
        batch, tokens, _ = qkv.shape
        queries, keys, values = (qkv.view(batch, tokens, 3, self.num_heads, self.head_dim)
                                 .permute(2, 0, 3, 1, 4))                      # 3 × [B, H, T, hd]
        context = F.scaled_dot_product_attention(queries, keys, values, is_causal=True)
        return context.transpose(1, 2).reshape(batch, tokens, self.num_heads * self.head_dim)

    def _fc1_gelu(self, x):
        """``gelu(fc1(x))``: on a CPU one fused kernel (:func:`helpers.kernels.fused_linear_gelu`), which
        applies the GELU to the float32 sums before they are rounded to bfloat16 (~15 % off the trunk
        pass, and if anything more accurate); elsewhere the two steps."""
        weight, bias = self.weights["fc1"]
        hidden = fused_linear_gelu(x, weight, bias)
        return F.gelu(F.linear(x, weight, bias), approximate="tanh") if hidden is None else hidden


def is_plain_block(block):
    """True when every linear layer of a transformer block is a plain ``nn.Linear`` (no LoRA, no int8)."""
    att = block.att
    linears = (att.W_query, att.W_key, att.W_value, att.out_proj, block.ff.layers[0], block.ff.layers[2])
    return all(type(linear) is nn.Linear for linear in linears)


def bf16_trunk_blocks(model):
    """The frozen blocks as :class:`Bf16TrunkBlock` copies, for a trunk pass in bfloat16.

    A block whose layers are not all plain ``nn.Linear`` (frozen LoRA wrappers, say) is copied with
    its ``nn.Linear`` weights cast to bfloat16 instead, and runs under autocast as it is.
    """
    def cast_copy(block):
        block = copy.deepcopy(block)
        for module in block.modules():
            if type(module) is nn.Linear:
                module.to(torch.bfloat16)
        return block
    return [Bf16TrunkBlock(block) if is_plain_block(block) else cast_copy(block) for block in model.trf_blocks[:-1]]


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


class TrunkCache:
    """Trunk activations per message, looked up by the message's token ids and filled on demand.

    ``exact`` mode keeps all positions of the padded message; ``flexible`` mode keeps only the
    real tokens (causal attention: padding after a token never changes that token's activations).
    A message seen for the first time is run through the trunk right away; :meth:`add` does that
    for many messages at once, in batches of similar length, which is faster. ``precision="bf16"``
    runs the trunk in bfloat16 where the hardware has it (activations are stored in float32).
    """

    def __init__(self, model, mode="exact", pad_token_id=50256, precision="fp32"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        check_fast_engine_applicable(model)
        self.model, self.mode, self.pad_token_id = model, mode, pad_token_id
        self.precision = resolve_precision(precision, model.tok_emb.weight.device, announce="once")
        self.index, self.activations = {}, []  # token-id bytes -> position in self.activations
        self._blocks = None  # the trunk's blocks (in bf16, cast copies), chosen on the first trunk pass

    def __len__(self):
        return len(self.activations)

    @classmethod
    def prepared(cls, model, mode="exact"):
        """A cache filled from ``data/trunk_cache`` when ``python -m helpers prepare`` built one for this trunk."""
        cache = cls(model, mode)
        cache.load(trunk_cache_dir())
        return cache

    def _length(self, rows):
        return (rows != self.pad_token_id).sum(dim=1) if self.mode == "flexible" else torch.full((len(rows),), rows.shape[1])

    def _batches(self, order, lengths, batch_size):
        """Consecutive slices of ``order`` (messages sorted by length): ``batch_size`` messages each,
        or by default 16 in float32 and, in bf16, as many as hold about ``BF16_BATCH_TOKENS`` real
        tokens (the CPU's bf16 matrix units want many rows; short messages then go a hundred at a
        time, and the bf16 blocks skip the padding, see :class:`Packing`). Both defaults were
        measured fastest on a 2-core CPU with AMX."""
        if batch_size or self.precision != "bf16":
            step = batch_size or 16
            return [order[start:start + step] for start in range(0, len(order), step)]
        batches, start, sorted_lengths = [], 0, lengths[order].tolist()
        while start < len(order):
            end, tokens = start + 1, sorted_lengths[start]
            while end < len(order) and tokens + sorted_lengths[end] <= BF16_BATCH_TOKENS:
                tokens += sorted_lengths[end]
                end += 1
            batches.append(order[start:end])
            start = end
        return batches

    def add(self, rows, batch_size=None, progress=False):
        """Run the trunk over every row of ``rows`` (token ids, ``[n, T]``) not cached yet,
        in batches of messages of similar length (see :meth:`_batches`)."""
        rows = torch.unique(rows, dim=0)
        rows = rows[[row.numpy().tobytes() not in self.index for row in rows]] if len(self.index) else rows
        if len(rows) == 0:
            return self
        lengths = self._length(rows)
        order = torch.argsort(lengths, stable=True)
        device = self.model.tok_emb.weight.device
        self.model.eval()
        if self._blocks is None:
            # float32: the model's own blocks (their MLPs fuse the GELU into a oneDNN kernel here, see
            # helpers.kernels, which measured faster than a oneDNN copy of the blocks); bf16: cast copies
            self._blocks = (list(self.model.trf_blocks[:-1]) if self.precision == "fp32"
                            else bf16_trunk_blocks(self.model))
        packed = all(type(block) is Bf16TrunkBlock for block in self._blocks)  # blocks that skip the padding
        batches = self._batches(order, lengths, batch_size)
        for chunk in tqdm(batches, desc=f"Caching the frozen trunk ({self.mode})", unit="batch", disable=not progress):
            chunk_lengths = lengths[chunk]
            ids = rows[chunk, :int(chunk_lengths.max())].to(device)
            with autocast(self.precision, device):
                if packed:  # the real tokens, message after message: [sum of lengths, emb_dim]
                    hidden = packed_trunk_forward(self.model, ids, chunk_lengths.to(device), self._blocks)
                else:
                    hidden = trunk_forward(self.model, ids, self._blocks)
            hidden = hidden.to(self.model.tok_emb.weight.dtype).cpu()  # float32 under bf16 autocast too
            pieces = (torch.split(hidden, chunk_lengths.tolist()) if packed
                      else [hidden[j, :length].clone() for j, length in enumerate(chunk_lengths.tolist())])
            for i, piece in zip(chunk.tolist(), pieces):
                self.index[rows[i].numpy().tobytes()] = len(self.activations)
                self.activations.append(piece)
        return self

    def add_datasets(self, datasets, progress=True):
        """Cache every message of some ``SpamDataset``-like datasets (items are ``(token_ids, label)``)."""
        return self.add(torch.stack([ds[i][0] for ds in datasets for i in range(len(ds))]), progress=progress)

    def lookup(self, input_ids, device):
        """The cached trunk output for a batch of token ids, and the position to read for each message."""
        keys = [row.numpy().tobytes() for row in input_ids.cpu()]
        if any(key not in self.index for key in keys):
            self.add(input_ids.cpu(), batch_size=len(input_ids))  # only the messages not seen before
        pieces = [self.activations[self.index[key]] for key in keys]
        lengths = torch.tensor([len(piece) for piece in pieces])
        x = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True)  # zeros after each message's end
        return x.to(device), (lengths - 1).to(device)

    # -- on disk: keyed by the trunk's weights and the mode; each message keyed by its token ids
    def file_for(self, folder) -> Path:
        kind = self.mode if self.precision == "fp32" else f"{self.mode}-{self.precision}"
        return Path(folder) / f"trunk-{kind}-{_trunk_fingerprint(self.model, kind)[:16]}.safetensors"

    def save(self, folder) -> Path:
        path = self.file_for(folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.index, key=self.index.get)
        rows = torch.stack([torch.frombuffer(bytearray(key), dtype=torch.long) for key in keys])
        tensors = {"rows": rows, "lengths": torch.tensor([len(a) for a in self.activations]),
                   "activations": torch.cat(self.activations)}
        # a uniquely named temporary file and a checksum: concurrent saves never collide
        return write_checked(path, writer=lambda tmp: save_file(tensors, tmp))

    def load(self, folder) -> bool:
        """Fill the cache from ``folder`` if it holds this trunk's file; True if it did.

        A file that fails its checksum or does not fit this trunk is deleted (so the next
        ``prepare`` rebuilds it) and the cache stays as it was: False.
        """
        path = self.file_for(folder)
        if not path.is_file():
            return False
        try:
            verify_checked(path)
            saved = load_file(str(path))
            rows, lengths, activations = saved["rows"], saved["lengths"], saved["activations"]
            width = self.model.cfg["emb_dim"]
            if (rows.dtype != torch.long or lengths.dtype != torch.long or rows.ndim != 2 or activations.ndim != 2
                    or activations.shape[1] != width or len(lengths) != len(rows)
                    or int(lengths.sum()) != len(activations) or not torch.isfinite(activations).all()):
                raise ValueError("its tensors do not have the shapes and types of a trunk cache")
        except (CorruptFileError, SafetensorError, KeyError, ValueError, RuntimeError, OSError) as exc:
            print(f"The trunk cache {path.name} cannot be used ({exc}); it was deleted and will be rebuilt.")
            remove_checked(path)
            return False
        for row, piece in zip(saved["rows"], torch.split(saved["activations"], saved["lengths"].tolist())):
            key = row.numpy().tobytes()
            if key not in self.index:
                self.index[key] = len(self.activations)
                self.activations.append(piece)
        return True


def _trunk_fingerprint(model, mode):
    digest = hashlib.sha256(f"{mode}|{model.cfg}".encode())
    for module in (model.tok_emb, model.pos_emb, *model.trf_blocks[:-1]):
        for tensor in module.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def top_logits(model, cache, input_ids):
    """The classifier's logits at the read position, ``[batch, 1, classes]``, from cached trunk activations."""
    x, positions = cache.lookup(input_ids, model.out_head.weight.device)
    return model.out_head(model.final_norm(last_block_at(model.trf_blocks[-1], x, positions)))


class CachedTop(nn.Module):
    """Stands in for the classifier: token ids → logits ``[batch, 1, classes]`` from cached trunk activations."""

    def __init__(self, model, cache):
        super().__init__()
        check_fast_engine_applicable(model)
        self.model, self.cache = model, cache

    def forward(self, input_ids):
        return top_logits(self.model, self.cache, input_ids)


class CachedTrunkClassifier(GPTModel):
    """A classifier whose forward pass takes the frozen trunk from a cache (see :func:`use_trunk_cache`).

    It returns only the read position's logits, ``[batch, 1, classes]``: everything that reads
    ``model(x)[:, -1, :]`` (accuracy, loss, predictions, ``classify_review``) gives the same
    numbers as the full model, many times faster. Weights, ``state_dict`` and checkpoints are unchanged.
    If the trunk stops being frozen (more layers unfrozen, LoRA added), it computes everything live.
    """

    def forward(self, in_idx):
        try:  # checked on every call: a trunk made trainable (or given LoRA) since must be computed live
            check_fast_engine_applicable(self)
        except FastEngineError:
            return GPTModel.forward(self, in_idx)
        return top_logits(self, self.trunk_cache, in_idx)


def use_trunk_cache(model, cache):
    """Turn ``model`` (a classifier whose trunk matches ``cache``) into a :class:`CachedTrunkClassifier`."""
    check_fast_engine_applicable(model)
    model.__class__ = CachedTrunkClassifier
    model.trunk_cache = cache
    return model


def train_classifier_fast(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter,
                          max_steps=None, mode="exact", cache=None, fallback=False, precision=None):
    """``train_classifier_simple`` on cached trunk activations: same arguments, same log, same return value.

    ``mode="exact"`` trains the lecture's model; ``mode="flexible"`` trains the last-real-token
    variant. The training messages are run through the trunk once up front; any other message
    (the validation batches the loop evaluates) the first time it is read. If the model does not
    allow the engine (dropout, or trainable layers below the last block), it raises
    :class:`FastEngineError`, or with ``fallback=True`` says so and runs the lecture loop instead.

    ``precision`` (``"fp32"``, ``"bf16"`` or ``"auto"``, see :mod:`helpers.precision`) applies to
    the trunk pass, where the work is (and, when ``fallback=True`` runs the lecture loop instead,
    to that whole loop): by default exact mode stays in float32 (the lecture's
    numbers) and flexible mode uses bfloat16 where the hardware has it (``"auto"``). The training
    steps always run in float32: a step multiplies 8 rows by the 7M trainable weights, so its time
    is spent reading weights, gradients and AdamW's moments from memory, and bf16 autocast would
    only add a cast of every weight per step (measured slower, see ``benchmarks/finetune_speed.py``).
    """
    if precision is None:
        precision = cache.precision if cache is not None else ("fp32" if mode == "exact" else "auto")
    try:
        check_fast_engine_applicable(model)
    except FastEngineError as exc:
        if not fallback:
            raise
        print(f"The fast engine does not apply: {exc}\nFalling back to the lecture loop (train_classifier_simple).")
        return train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                                       eval_freq, eval_iter, max_steps=max_steps, precision=precision)
    cache = cache if cache is not None else TrunkCache(model, mode, precision=precision)
    if cache.mode != mode or cache.model is not model:
        raise ValueError(f"the cache was built for mode {cache.mode!r} of another model; build one for this model")
    precision = resolve_precision(precision, device, announce=False)
    if cache.precision != precision:
        raise ValueError(f"the cache was built in {cache.precision}, but precision={precision!r} was asked for; "
                         "build a cache with the same precision")
    start = time.time()
    cache.add_datasets([train_loader.dataset])
    print(f"Trunk cache: {len(cache)} training messages in {time.time() - start:.1f} s.")
    return train_classifier_simple(CachedTop(model, cache), train_loader, val_loader, optimizer, device,
                                   num_epochs, eval_freq, eval_iter, max_steps=max_steps, precision="fp32")


def trunk_cache_dir() -> Path:
    """Where prepared trunk caches live (``data/trunk_cache``)."""
    from .paths import data_dir

    return data_dir() / "trunk_cache"


_LOADED = {}  # prepared cache files already in memory: the trunk is the same for every classifier


def attach_prepared_trunk_cache(model):
    """Instructor mode: let ``model`` read its frozen trunk from the prepared cache, if there is one."""
    cache = TrunkCache(model, "exact")
    path = cache.file_for(trunk_cache_dir())
    if path not in _LOADED:
        if not cache.load(trunk_cache_dir()):
            print("Instructor mode: no prepared trunk cache for this model (run `python -m helpers prepare`); "
                  "computing everything live.")
            return model
        _LOADED[path] = cache
    print("Instructor mode: this classifier reads its frozen trunk from the prepared cache "
          "(same results, many times faster).")
    return use_trunk_cache(model, _LOADED[path])
