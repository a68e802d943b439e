"""Teaching diagrams, drawn by code: the model surgery, the pipeline, the training loop, the stages of an LLM.

Each returns a :class:`~helpers.figures.described.DescribedFigure` (the Figure and the words that describe it; it can
save itself as PNG). The surgery diagram reads the model it is given, so what it shows as frozen or trainable is what
the model really does. Box colours are light tints of the Okabe–Ito palette, and every box also says in words what it
is ("trains", "frozen", "new head"), so nothing depends on telling colours apart.
"""
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .plots import _finish

FROZEN, TRAINABLE, NEW, REMOVED, NEUTRAL = "#CFE2F3", "#F5C26B", "#A8DCC9", "#EEEEEE", "#FFFFFF"


def _box(ax, x, y, w, h, text, color, fontsize=12, **kwargs):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="#333333", linewidth=1, **kwargs))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, **kwargs):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#333333",
                                 shrinkA=2, shrinkB=2, **kwargs))


def _blank(ax, width, height):
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")


def _trains(module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def _count(module) -> str:
    n = sum(p.numel() for p in module.parameters())
    return f"{n / 1e6:.1f} M" if n >= 1e5 else f"{n:,}"


def plot_model_surgery(model, vocab_size=50257, save_path=None):
    """The classifier's layers bottom to top, coloured by whether they train; the replaced head beside them.

    Reads ``requires_grad`` from ``model`` (a classifier after :func:`helpers.prepare_for_classification`).
    """
    blocks = list(model.trf_blocks)
    emb_dim, num_classes = model.cfg["emb_dim"], model.out_head.out_features
    shown = blocks if len(blocks) <= 4 else [blocks[0], None, *blocks[-2:]]  # None: the elided middle
    rows = [("token + position embeddings", model.tok_emb, None)]
    for block in shown:
        if block is None:
            first, last = 2, len(blocks) - 2
            rows.append((f"⋮  blocks {first}–{last}  ⋮", None, blocks[1]))
        else:
            rows.append((f"transformer block {blocks.index(block) + 1}", block, None))
    rows += [("final LayerNorm", model.final_norm, None), (f"new head: Linear({emb_dim} → {num_classes})", model.out_head, None)]

    fig, ax = plt.subplots(figsize=(10.8, min(5.8, 0.62 * (len(rows) + 1.6))))
    _blank(ax, 10, len(rows) + 1.6)
    for i, (label, module, stand_in) in enumerate(rows):
        y = 0.6 + i
        is_head = module is model.out_head
        trains = _trains(module if module is not None else stand_in)
        color = NEW if is_head else (TRAINABLE if trains else FROZEN)
        detail = "" if module is None else f"   ({_count(module)} parameters)"
        _box(ax, 3.4, y, 5.6, 0.72, label + detail, color)
        ax.text(6.4, y, "trains" if trains else "frozen", va="center", fontsize=12,
                color="#B35900" if trains else "#555555", weight="bold" if trains else "normal")
        if i:
            _arrow(ax, (3.4, y - 0.65), (3.4, y - 0.35))
    head_y = 0.6 + len(rows) - 1
    _box(ax, 8.5, head_y + 0.95, 2.9, 0.95, f"GPT-2's head, removed\nLinear({emb_dim} → {vocab_size:,})", REMOVED,
         linestyle="--")
    _arrow(ax, (7.4, head_y + 0.85), (6.25, head_y + 0.2), linestyle="--")
    ax.text(6.6, head_y + 0.75, "replaced by", fontsize=12, color="#C0392B", ha="right")
    ax.set_title("Model surgery: freeze the pretrained trunk, train the top, swap the head", fontsize=13)
    layers = "; ".join(f"{label.replace('⋮', '').strip()} ({_count(module) + ' parameters, ' if module is not None else ''}"
                       f"{'trains' if _trains(module if module is not None else stand_in) else 'frozen'})"
                       for label, module, stand_in in rows)
    description = (f"Diagram of the classifier's layers, bottom to top: {layers}. Beside the new head, GPT-2's own head, "
                   f"Linear({emb_dim} → {vocab_size:,}), is shown removed and replaced. The model has {len(blocks)} "
                   f"transformer blocks of {emb_dim} dimensions.")
    return _finish(fig, save_path, description, from_a_model=model)


def plot_pipeline(example="WIN a free cruise!", tokenizer=None, max_length=120, save_path=None):
    """From a raw SMS to a prediction, one box per step, with the example's values where they are known."""
    ids = tokenizer.encode(example) if tokenizer is not None else None
    ids_text = (f"[{ids[0]}, …]" if len(ids) > 1 else f"[{ids[0]}]") if ids else "[token ids]"
    n_real = len(ids) if ids else "n"
    steps = [
        (f"raw SMS\n“{example[:9]}{'…' if len(example) > 9 else ''}”", NEUTRAL),
        (f"tokenize\n(GPT-2 BPE)\n{ids_text}", NEUTRAL),
        (f"pad to {max_length}\ntokens:\n{n_real} real", NEUTRAL),
        ("GPT-2 trunk\n(frozen)", FROZEN),
        ("last block,\nnorm\n(trained)", TRAINABLE),
        ("new head:\nlast token\n→ 2 logits", NEW),
        ("softmax,\nargmax:\nham / spam", NEUTRAL),
    ]
    fig, ax = plt.subplots(figsize=(10.8, 2.8))
    _blank(ax, 12, 2)
    width = 12 / len(steps)
    for i, (text, color) in enumerate(steps):
        x = width * (i + 0.5)
        _box(ax, x, 1.0, width * 0.88, 1.6, text, color)
        if i:  # from the previous box's right edge to this box's left edge
            _arrow(ax, (x - width * 0.56, 1.0), (x - width * 0.44, 1.0))
    ax.set_title("The pipeline: from a raw message to a prediction", fontsize=13)
    description = ("Diagram of the pipeline from a raw message to a prediction, seven boxes left to right: "
                   + "; ".join(" ".join(text.split()) for text, _ in steps) + ".")
    return _finish(fig, save_path, description)


def plot_training_loop(save_path=None):
    """The four moves of every training step, as a cycle, with the evaluations beside it."""
    moves = ["1. optimizer.zero_grad()\nforget the last gradients",
             "2. forward pass + loss\ncalc_loss_batch (last token)",
             "3. loss.backward()\ngradients of the trainable weights",
             "4. optimizer.step()\nAdamW updates the weights"]
    places = [(2.5, 3.3), (6.5, 3.3), (6.5, 1.0), (2.5, 1.0)]
    fig, ax = plt.subplots(figsize=(10.8, 5.2))
    _blank(ax, 11.7, 4.3)
    for text, (x, y) in zip(moves, places):
        _box(ax, x, y, 3.5, 1.1, text, TRAINABLE if "step" in text else NEUTRAL)
    for (x0, y0), (x1, y1) in zip(places, places[1:] + places[:1]):
        if y0 == y1:
            sign = 1 if x1 > x0 else -1
            _arrow(ax, (x0 + sign * 1.7, y0), (x1 - sign * 1.7, y1))
        else:
            sign = 1 if y1 > y0 else -1
            _arrow(ax, (x0, y0 + sign * 0.6), (x1, y1 - sign * 0.6))
    ax.text(4.5, 2.15, "for every batch\nof 8 messages", ha="center", va="center", fontsize=12, style="italic")
    _box(ax, 10.0, 2.15, 2.9, 3.4, "every eval_freq\nsteps: loss on\neval_iter batches\n(train and val)\n\n"
         "after every epoch:\naccuracy on\neval_iter batches", FROZEN)
    ax.set_title("One training step, four moves", fontsize=13)
    description = ("Diagram of one training step as a cycle of four moves, repeated for every batch of 8 messages: "
                   + "; ".join(" ".join(move.split("\n")) for move in moves) + ". Beside the cycle: every eval_freq "
                   "steps the loss on eval_iter batches of the training and validation sets, and after every epoch "
                   "the accuracy on eval_iter batches.")
    return _finish(fig, save_path, description)


#: The book's three stages of building an LLM (chapter 1's map); this lecture is step 8.
LLM_STAGES = (
    ("Stage 1: building an LLM", ("1 data preparation & sampling", "2 attention mechanism", "3 LLM architecture")),
    ("Stage 2: a foundation model", ("4 pretraining", "5 training loop", "6 model evaluation",
                                     "7 load pretrained weights")),
    ("Stage 3: fine-tuning", ("8 classification fine-tuning", "9 instruction fine-tuning")),
)


def plot_llm_stages(current="8 classification fine-tuning", save_path=None):
    """The three stages of building an LLM, with this lecture's step (``current``) highlighted."""
    fig, ax = plt.subplots(figsize=(10.8, 4.4))
    _blank(ax, 10, 3.4)
    for column, (title, steps) in enumerate(LLM_STAGES):
        x = 1.7 + column * 3.3
        ax.text(x, 3.15, title, ha="center", va="center", fontsize=13, weight="bold")
        for row, step in enumerate(steps):
            color = TRAINABLE if step == current else (NEW if column == 2 else FROZEN)
            _box(ax, x, 2.55 - row * 0.62, 2.9, 0.5, step + ("\n← this lecture" if step == current else ""), color)
        if column < 2:
            _arrow(ax, (x + 1.5, 1.9), (x + 1.8, 1.9))
    stages = "; ".join(f"{title}: {', '.join(steps)}" for title, steps in LLM_STAGES)
    description = (f"Diagram of the three stages of building an LLM, left to right, each a column of steps. {stages}. "
                   f"The step {current!r} is highlighted and marked 'this lecture'.")
    return _finish(fig, save_path, description)
