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
import hashlib
import math
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file
from ..storage.memory import release_freed_memory
from ..storage.progress import progress as progress_bar

from ..storage.files import (CorruptFileError, open_checked, read_exactly_at, read_safetensors_header, remove_checked,
                             write_checked)
from ..storage.paths import StorageError, data_dir
from ..training import train_classifier_simple
from .blocks import last_block_at, trunk_blocks, trunk_blocks_one_at_a_time, trunk_forward
from .precision import autocast, resolve_precision

MODES = ("exact", "flexible")
BF16_BATCH_TOKENS = 2048  # tokens per batch of a bf16 trunk pass (see TrunkCache._batches)


class FastEngineError(ValueError):
    """The fast engine would not compute the lecture's math for this model."""


def check_fast_engine_applicable(model):
    """Raise :class:`FastEngineError` unless only the last block, final norm and head train, without dropout."""
    model = plain_model(model)
    if model.cfg["drop_rate"] > 0:
        raise FastEngineError(f"drop_rate is {model.cfg['drop_rate']}: with dropout every pass through the trunk "
                              "differs, so cached activations would change the math. Set drop_rate to 0.")
    last = f"trf_blocks.{len(model.trf_blocks) - 1}."
    outside = [name for name, p in model.named_parameters()
               if p.requires_grad and not name.startswith((last, "final_norm.", "out_head."))]
    if outside:
        raise FastEngineError(f"{len(outside)} trainable parameter tensors lie below the last block (e.g. "
                              f"{outside[:2]}): the trunk would change while training, so it cannot be cached.")


#: safetensors' names of the dtypes a trunk cache may store (its file format's ``dtype`` field)
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.bfloat16: "BF16", torch.float16: "F16"}


class _MemoryRows:
    """Activations (one row per token) held in a tensor in the process's memory."""

    def __init__(self, tensor):
        self.tensor = tensor

    def read(self, first, out):
        out.copy_(self.tensor[first:first + len(out)])


class _FileRows:
    """Activations (one row per token) in a binary file from byte ``start`` on, read by offset when asked.

    The process holds none of them in its memory: the operating system's page cache keeps what fits (re-reading it
    is a copy at memory speed) and, under a memory limit, drops what it must rather than the kernel being killed."""

    def __init__(self, file, start, row_bytes, name):
        self.file, self.start, self.row_bytes, self.name = file, start, row_bytes, name
        self.rows = 0  # rows appended and complete: a write stopped halfway (Ctrl+C) is written over by the next
        self.lock = threading.Lock()  # one position per open file: a seek and its read or write go together

    def append(self, rows) -> int:
        """Write ``rows`` (a contiguous tensor) after the last complete row; returns the index of its first row."""
        with self.lock:
            first = self.rows
            self.file.seek(self.start + first * self.row_bytes)
            self.file.write(rows.contiguous().view(torch.uint8).numpy())
            self.file.flush()
            self.rows = first + len(rows)
        return first

    def read(self, first, out):
        """Fill ``out`` (contiguous, ``[rows, width]``) with rows ``first …`` of the file."""
        with self.lock:
            try:
                read_exactly_at(self.file, self.start + first * self.row_bytes, out.view(torch.uint8).numpy())
            except ValueError:
                raise CorruptFileError(Path(self.name), "ended before the trunk activations it should hold") from None


def _scratch_file(folder):
    """An unnamed temporary file in ``folder`` (deleted when closed, or when the process ends, however it ends)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryFile(dir=folder, prefix="scratch-")


def _safetensors_layout(file):
    """``{name: (dtype, shape, begin, end)}`` for the tensors of an open safetensors file, with absolute byte offsets:
    a cache then reads activations straight from the file, by offset, instead of loading all of them."""
    header, start, length = read_safetensors_header(file)
    layout = {}
    for name, entry in header.items():
        if name != "__metadata__":
            begin, end = entry["data_offsets"]
            if not 0 <= begin <= end <= length - start:
                raise ValueError(f"its tensor {name!r} lies outside the file")
            layout[name] = (entry["dtype"], tuple(entry["shape"]), start + begin, start + end)
    return layout


class TrunkCache:
    """Trunk activations per message, looked up by the message's token ids and filled on demand.

    ``exact`` mode keeps all positions of the padded message; ``flexible`` mode keeps only the
    real tokens (causal attention: padding after a token never changes that token's activations).
    A message seen for the first time is run through the trunk right away; :meth:`add` does that
    for many messages at once, in batches of similar length, which is faster. ``precision="bf16"``
    runs the trunk in bfloat16 where the hardware has it (activations are stored in float32).

    The activations are kept on disk (``on_disk=True``, the default): in an unnamed temporary file next to the
    prepared caches (``data/trunk_cache``), deleted when the cache is closed or the kernel ends, and read back by
    offset for each batch. The kernel's memory holds only the index. At GPT-2 small's size the exact mode's
    activations of the whole dataset take 0.55 GB, more than a student's server can spare next to the model
    (docs/hub.md); the operating system's page cache keeps them in memory while there is room, so reading them
    costs a copy, not a disk access. Where no file can be written they stay in memory, and it says so.
    """

    def __init__(self, model, mode="exact", pad_token_id=50256, precision="fp32", on_disk=True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        model = plain_model(model)  # the classifier itself, also when given a stand-in for it
        check_fast_engine_applicable(model)
        self.model, self.mode, self.pad_token_id = model, mode, pad_token_id
        self.precision = resolve_precision(precision, model.tok_emb.weight.device, announce="once")
        self.dtype, self.width = model.tok_emb.weight.dtype, model.cfg["emb_dim"]
        self.index = {}  # token-id bytes -> (where its rows are: a _FileRows or _MemoryRows, first row, row count)
        self.on_disk = on_disk
        self._file = None  # this cache's own _FileRows, made when the first activations are stored
        self._opened = []  # the files this cache reads (its own, prepared ones): closed by close()
        self._blocks = None  # the engine's trunk blocks (helpers.fast.blocks), made on the first trunk pass
        self.fingerprint = trunk_fingerprint(model)  # the trunk weights every activation here comes from
        self._checked = {_trunk_versions(model): self.fingerprint}

    def check_fits(self, model):
        """Raise :class:`FastEngineError` unless ``model``'s trunk holds the weights this cache was computed from.

        Cheap when nothing changed: the weights are hashed again only after one of them was modified in
        place or replaced (``load_state_dict``, an optimizer step, a new ``Parameter``).
        """
        versions = _trunk_versions(model)
        if versions not in self._checked:
            if len(self._checked) >= 16:  # several classifiers may share one cache (notebook 4 compares three)
                self._checked.pop(next(iter(self._checked)))
            self._checked[versions] = trunk_fingerprint(model)
        if self._checked[versions] != self.fingerprint:
            raise FastEngineError("this trunk cache holds activations of other trunk weights than the model's "
                                  "(they changed since it was built, e.g. by load_state_dict): its answers would be "
                                  "stale. Build a new one for this model: TrunkCache(model, mode), or "
                                  "attach_prepared_trunk_cache(model) in instructor mode.")

    def __len__(self):
        return len(self.index)

    def drop(self, dataset):
        """Forget the activations of ``dataset``'s messages (a ``SpamDataset``, or a loader's ``.dataset``); held in
        memory, they are freed once nothing else holds them. A message looked up again runs through the trunk again."""
        for i in range(len(dataset)):
            self.index.pop(dataset[i][0].numpy().tobytes(), None)
        return self

    def close(self):
        """Forget every activation and delete this cache's temporary file (also done when the kernel ends)."""
        self.index.clear()
        for file in self._opened:
            file.close()
        self._file, self._opened = None, []

    def _store(self, packed):
        """Keep ``packed`` (rows of activations) where this cache keeps them; ``(where, index of its first row)``."""
        if self.on_disk:
            try:
                if self._file is None:
                    folder = trunk_cache_dir()
                    file = _scratch_file(folder)
                    self._opened.append(file)
                    self._file = _FileRows(file, 0, self.width * self.dtype.itemsize, str(folder / "scratch"))
                return self._file, self._file.append(packed)
            except (OSError, StorageError) as exc:  # a read-only data folder, a full disk: the rest in memory
                self.on_disk = False
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                print(f"The trunk cache keeps its activations in memory: it could not write a temporary file "
                      f"in the data folder ({reason}).")
        return _MemoryRows(packed), 0

    @classmethod
    def prepared(cls, model, mode="exact", precision="fp32"):
        """A cache filled from ``data/trunk_cache`` when ``python -m helpers prepare`` built one for this trunk."""
        cache = cls(model, mode, precision=precision)
        cache.load(trunk_cache_dir())
        return cache

    def _length(self, rows):
        return (rows != self.pad_token_id).sum(dim=1) if self.mode == "flexible" else torch.full((len(rows),), rows.shape[1])

    def _batches(self, order, lengths, batch_size):
        """Consecutive slices of ``order`` (messages sorted by length, longest first): ``batch_size`` messages each,
        or by default 16 in float32 and, in bf16, as many as hold about ``BF16_BATCH_TOKENS`` tokens
        (the CPU's bf16 matrix units want many rows; short messages then go a hundred at a time).
        Both defaults were measured fastest on a 2-core CPU with AMX."""
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

    def add(self, rows, batch_size=None, progress=False, keep_blocks=True):
        """Run the trunk over every row of ``rows`` (token ids, ``[n, T]``) not cached yet,
        in batches of messages of similar length (see :meth:`_batches`).

        In bfloat16 the trunk runs on a bf16 copy of its weights. ``keep_blocks`` keeps that copy (0.17 GB for
        GPT-2 small) for the next call; without it, each batch casts one block at a time and lets it go (for a bulk
        fill, whose batches hold 2,048 tokens: notebook 4's took about 7 % longer, measured)."""
        self.check_fits(self.model)
        rows = torch.unique(rows, dim=0)
        rows = rows[[row.numpy().tobytes() not in self.index for row in rows]] if len(self.index) else rows
        if len(rows) == 0:
            return self
        lengths = self._length(rows)
        # longest first: each batch then fits in memory the previous one freed (shortest first, every batch needs
        # a little more than any before it, and the process grew by 0.2 GB at GPT-2 small's size, measured)
        order = torch.argsort(lengths, descending=True, stable=True)
        device = self.model.tok_emb.weight.device
        was_training = self.model.training
        self.model.eval()
        bf16 = self.precision == "bf16"
        if self._blocks is None and (keep_blocks or not bf16):
            release_freed_memory()  # what the cell freed before this call (a copy in bf16 needs room)
            self._blocks = trunk_blocks(self.model, torch.bfloat16 if bf16 else None)
        for chunk in progress_bar(self._batches(order, lengths, batch_size), desc=f"Caching the frozen trunk ({self.mode})",
                              unit="batch", disable=not progress):
            chunk_lengths = lengths[chunk].tolist()
            ids = rows[chunk, :max(chunk_lengths)].to(device)
            with autocast(self.precision, device):  # for blocks that are not plain; the engine's own cast once
                hidden = trunk_forward(self.model, ids, self._blocks if self._blocks is not None
                                       else trunk_blocks_one_at_a_time(self.model, torch.bfloat16))
            hidden = hidden.to(self.model.tok_emb.weight.dtype).cpu()  # float32 under bf16 autocast too
            # One block of rows per batch, each message its real tokens: no padding kept, and in memory not one
            # allocation per message (thousands of small ones fragment the heap: the process grew 2.7x the data).
            packed = (hidden.flatten(0, 1) if min(chunk_lengths) == hidden.shape[1] else
                      torch.cat([row[:length] for row, length in zip(hidden, chunk_lengths)]))
            where, first = self._store(packed)
            del hidden, packed
            release_freed_memory()  # batches of changing shapes leave the heap in pieces it cannot reuse: 0.3 GB
            for i, length in zip(chunk.tolist(), chunk_lengths):
                self.index[rows[i].numpy().tobytes()] = (where, first, length)
                first += length
        self.model.train(was_training)
        return self

    def add_datasets(self, datasets, progress=True):
        """Cache every message of some ``SpamDataset``-like datasets (items are ``(token_ids, label)``).

        In bfloat16 it casts the trunk's weights one block at a time, per batch, and keeps no bf16 copy of them
        (0.17 GB for GPT-2 small): a message not cached yet makes that copy (0.6 s), and keeps it, as when a
        loader's batches come one at a time."""
        self.add(torch.stack([ds[i][0] for ds in datasets for i in range(len(ds))]), progress=progress,
                 keep_blocks=False)
        if self.precision == "bf16" and self._blocks is not None:
            self._blocks = None
            release_freed_memory()
        return self

    def lookup(self, input_ids, device):
        """The cached trunk output for a batch of token ids, and the position to read for each message."""
        keys = [row.numpy().tobytes() for row in input_ids.cpu()]
        if any(key not in self.index for key in keys):
            self.add(input_ids.cpu(), batch_size=len(input_ids))  # only the messages not seen before
        entries = [self.index[key] for key in keys]
        lengths = torch.tensor([count for _, _, count in entries])
        x = torch.zeros(len(keys), int(lengths.max()), self.width, dtype=self.dtype)  # zeros after each message
        for row, (where, first, count) in zip(x, entries):
            where.read(first, row[:count])
        return x.to(device), (lengths - 1).to(device)

    # -- on disk: keyed by the trunk's weights and the mode; each message keyed by its token ids
    def file_for(self, folder) -> Path:
        kind = self.mode if self.precision == "fp32" else f"{self.mode}-{self.precision}"
        key = hashlib.sha256(f"{kind}|{self.fingerprint}".encode()).hexdigest()
        return Path(folder) / f"trunk-{kind}-{key[:16]}.safetensors"

    def save(self, folder) -> Path:
        path = self.file_for(folder)
        keys = list(self.index)  # not the dropped ones
        rows = torch.stack([torch.frombuffer(bytearray(key), dtype=torch.long) for key in keys])
        lengths = torch.tensor([self.index[key][2] for key in keys])
        activations = torch.empty(int(lengths.sum()), self.width, dtype=self.dtype)
        for (where, first, count), piece in zip(self.index.values(), torch.split(activations, lengths.tolist())):
            where.read(first, piece)
        tensors = {"rows": rows, "lengths": lengths, "activations": activations}
        # a uniquely named temporary file and a checksum: concurrent saves never collide
        return write_checked(path, writer=lambda tmp: save_file(tensors, tmp))

    def load(self, folder) -> bool:
        """Fill the cache from ``folder`` if it holds this trunk's file; True if it did.

        On disk (``on_disk``), the activations are read from that file by offset when looked up, never loaded
        all at once; the file stays open, so a ``prepare`` that replaces it meanwhile does not change what this
        cache reads. A file that fails its checksum or does not fit this trunk is deleted (so the next
        ``prepare`` rebuilds it) and the cache stays as it was: False.
        """
        path = self.file_for(folder)
        if not path.is_file():
            return False
        file = None
        try:
            file = open_checked(path)
            layout = _safetensors_layout(file)
            rows, lengths = (self._read_tensor(file, layout[name], torch.long, "I64") for name in ("rows", "lengths"))
            dtype, shape, begin, end = layout["activations"]
            if (dtype != SAFETENSORS_DTYPES.get(self.dtype) or len(shape) != 2 or shape[1] != self.width
                    or rows.ndim != 2 or lengths.ndim != 1 or len(lengths) != len(rows) or (lengths < 1).any()
                    or int(lengths.sum()) != shape[0] or end - begin != shape[0] * self.width * self.dtype.itemsize):
                raise ValueError("its tensors do not have the shapes and types of a trunk cache")
            source = _FileRows(file, begin, self.width * self.dtype.itemsize, str(path))
            chunk = torch.empty(max(1, (1 << 24) // source.row_bytes), self.width, dtype=self.dtype)
            for first in range(0, shape[0], len(chunk)):  # 16 MB at a time: never the whole file in memory
                piece = chunk[:min(len(chunk), shape[0] - first)]
                source.read(first, piece)
                if not torch.isfinite(piece).all():
                    raise ValueError("it holds activations that are not finite numbers")
            if not self.on_disk:
                source = _MemoryRows(self._read_tensor(file, (dtype, shape, begin, end), self.dtype, dtype))
        except (CorruptFileError, KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
            if file is not None:
                file.close()
            if isinstance(exc, StorageError):  # unreadable (another account's): not deleted, named
                raise
            print(f"The trunk cache {path.name} cannot be used ({exc}); it was deleted and will be rebuilt.")
            remove_checked(path)
            return False
        if self.on_disk:
            self._opened.append(file)
        else:
            file.close()
        first = 0
        for row, length in zip(rows, lengths.tolist()):
            self.index.setdefault(row.numpy().tobytes(), (source, first, length))
            first += length
        return True

    @staticmethod
    def _read_tensor(file, entry, torch_dtype, safetensors_dtype):
        """One tensor of a safetensors file from its ``layout`` entry, read into memory (checked: dtype and size)."""
        dtype, shape, begin, end = entry
        if dtype != safetensors_dtype or end - begin != math.prod(shape) * torch_dtype.itemsize:
            raise ValueError("its tensors do not have the shapes and types of a trunk cache")
        tensor = torch.empty(shape, dtype=torch_dtype)
        _FileRows(file, begin, 1, file.name).read(0, tensor.view(-1))
        return tensor


def _trunk_tensors(model):
    model = plain_model(model)
    for module in (model.tok_emb, model.pos_emb, *model.trf_blocks[:-1]):
        yield from module.state_dict(keep_vars=True).values()


def _trunk_versions(model):
    """Which tensors the trunk holds, how often each was modified in place, and a sample of its values: changes when
    any weight does (the sample also catches an edit through ``.data``, which the version counter does not see)."""
    tensors = list(_trunk_tensors(model))
    with torch.no_grad():  # one transfer for all the samples (on a GPU, one sync instead of one per tensor)
        samples = torch.stack([t.detach().flatten()[::max(1, t.numel() // 16)].double().sum() for t in tensors]).tolist()
    return tuple((id(t), t.data_ptr(), t._version, sample) for t, sample in zip(tensors, samples))


def trunk_fingerprint(model) -> str:
    """SHA-256 of the model's configuration and frozen trunk (embeddings and every block but the last)."""
    digest = hashlib.sha256(f"{plain_model(model).cfg}".encode())
    for tensor in _trunk_tensors(model):
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())
    return digest.hexdigest()


def top_logits(model, cache, input_ids):
    """The classifier's logits at the read position, ``[batch, 1, classes]``, from cached trunk activations."""
    x, positions = cache.lookup(input_ids, model.out_head.weight.device)
    return model.out_head(model.final_norm(last_block_at(model.trf_blocks[-1], x, positions)))


class StandIn(nn.Module):
    """A wrapper that stands in for a classifier, ``.model``, left unchanged: its attributes (``cfg``,
    ``out_head`` …), ``state_dict`` and ``load_state_dict`` are read through. Subclasses define ``forward``."""

    def __init__(self, model):
        super().__init__()
        self.model = plain_model(model)  # the classifier itself, never a wrapper of a wrapper

    def __getattr__(self, name):  # the classifier's own attributes: cfg, out_head, trf_blocks, ...
        try:
            return super().__getattr__(name)
        except AttributeError:
            model = self.__dict__.get("_modules", {}).get("model")
            if model is None:  # half-built (copy, unpickling): nothing to read through yet
                raise
            return getattr(model, name)

    def state_dict(self, *args, **kwargs):
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        return self.model.load_state_dict(*args, **kwargs)


def plain_model(model):
    """The classifier itself, for a model that may be a :class:`StandIn` (e.g. a :class:`CachedTop`) for it."""
    return model.model if isinstance(model, StandIn) else model


class CachedTop(StandIn):
    """Stands in for a classifier whose frozen trunk is in ``cache``: token ids → logits ``[batch, 1, classes]``.

    Everything that reads ``model(x)[:, -1, :]`` (the lecture's accuracy, loss and training loop,
    ``predict_loader``, ``classify_review``) gives the classifier's numbers, many times faster. The
    classifier itself is ``.model``, unchanged (see :class:`StandIn`). If its trunk stops being frozen
    (more layers unfrozen, LoRA added) it computes everything live.
    """

    def __init__(self, model, cache):
        super().__init__(model)
        check_fast_engine_applicable(self.model)
        cache.check_fits(self.model)
        self.cache = cache

    def forward(self, input_ids):
        try:  # checked on every call: a trunk made trainable since must be computed live
            check_fast_engine_applicable(self.model)
        except FastEngineError:
            return self.model(input_ids)
        self.cache.check_fits(self.model)  # a trunk whose weights changed since would be read stale
        return top_logits(self.model, self.cache, input_ids)


def train_classifier_fast(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter,
                          mode="exact", cache=None, fallback=False, precision=None):
    """``train_classifier_simple`` on cached trunk activations: same arguments, same log, same return value.

    ``mode="exact"`` trains the lecture's model; ``mode="flexible"`` trains the last-real-token
    variant. The training and validation messages (every evaluation reads the latter) are run through the
    trunk once up front; any other message the first time it is read. If the model does not
    allow the engine (dropout, or trainable layers below the last block), it raises
    :class:`FastEngineError`, or with ``fallback=True`` says so and runs the lecture loop instead.

    ``precision`` (``"fp32"``, ``"bf16"`` or ``"auto"``, see :mod:`helpers.fast.precision`) applies to
    the trunk pass, where the work is (and, when ``fallback=True`` runs the lecture loop instead,
    to that whole loop): by default exact mode stays in float32 (the lecture's numbers) and flexible
    mode uses bfloat16 where the hardware has it (``"auto"``). The training steps always run in
    float32: a step multiplies 8 rows by the 7M trainable weights, so its time is spent reading
    weights, gradients and AdamW's moments from memory, and bf16 autocast would only add a cast of
    every weight per step (measured slower, see ``benchmarks/finetune_speed.py``).
    """
    if precision is None:
        precision = cache.precision if cache is not None else ("fp32" if mode == "exact" else "auto")
    try:
        check_fast_engine_applicable(model)
    except FastEngineError as exc:
        if not fallback:
            raise
        print(f"The fast engine does not apply: {exc}\nFalling back to the lecture loop (train_classifier_simple).")
        with autocast(resolve_precision(precision, device), device):
            return train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs,
                                           eval_freq, eval_iter)
    cache = cache if cache is not None else TrunkCache(model, mode, precision=precision)
    if cache.mode != mode or cache.model is not model:
        raise ValueError(f"the cache was built for mode {cache.mode!r} of another model; build one for this model")
    precision = resolve_precision(precision, device, announce=False)
    if cache.precision != precision:
        raise ValueError(f"the cache was built in {cache.precision}, but precision={precision!r} was asked for; "
                         "build a cache with the same precision")
    datasets = [train_loader.dataset, val_loader.dataset]  # every evaluation reads validation batches
    start, before = time.time(), len(cache)
    cache.add_datasets(datasets)
    count = sum(len(ds) for ds in datasets)
    distinct, new = len({ds[i][0].numpy().tobytes() for ds in datasets for i in range(len(ds))}), len(cache) - before
    repeats, cached = count - distinct, distinct - new
    notes = [f"{repeats} {'is a repeat' if repeats == 1 else 'are repeats'}" if repeats else "",
             f"{cached} {'was' if cached == 1 else 'were'} cached before" if cached else ""]
    notes = "; ".join(note for note in notes if note)
    print(f"Trunk cache: {count} training and validation messages{f' ({notes})' if notes else ''} "
          f"in {time.time() - start:.1f} s.")
    curves = train_classifier_simple(CachedTop(model, cache), train_loader, val_loader, optimizer, device,
                                     num_epochs, eval_freq, eval_iter)
    optimizer.zero_grad(set_to_none=True)  # the last step's gradients are used no more: free them
    return curves


def trunk_cache_dir() -> Path:
    """Where prepared trunk caches live (``data/trunk_cache``)."""
    return data_dir() / "trunk_cache"
