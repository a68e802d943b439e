"""Figures the notebooks draw. Each returns a :class:`~helpers.figures.described.DescribedFigure`: the matplotlib
Figure and a description written from the same data, shown as the image's alt text (and savable as PNG).

Colours come from the Okabe–Ito palette, which people with any common colour-vision deficiency can tell apart,
and no figure relies on colour alone: classes and series also differ by hatching, markers, line styles or labels.
"""
import matplotlib.pyplot as plt
import numpy as np

from ..storage.files import write_atomically
from ..weights import test_model_enabled
from .described import DescribedFigure, number, percent

# Okabe & Ito (2008), "Color Universal Design": blue, vermillion, bluish green, orange, sky blue, reddish purple.
BLUE, VERMILLION, GREEN, ORANGE, SKY, PURPLE = "#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7"
HAM_COLOR, SPAM_COLOR = BLUE, VERMILLION
HAM_HATCH, SPAM_HATCH = "", "//"  # spam is hatched too, so the classes differ without colour
SERIES = ((BLUE, ""), (VERMILLION, "//"), (GREEN, ".."), (ORANGE, "xx"))  # (colour, hatch) of each series

TEST_MODEL_STAMP = "TEST MODEL: random weights, not GPT-2's results"
TEST_MODEL_WORDS = "Made with the test model (random weights), so it shows nothing about GPT-2. "
#: Sized for a 1280x720 slide: no figure is larger than this (inches at 100 dpi: 1080 x 580 px, the room an output
#: gets on a slide beside its prompt, notebooks/rise.css), so it is shown unscaled, and no text is smaller than
#: MIN_FONT_PT (12 pt at 100 dpi: about 17 px on the slide). tests/test_figures.py checks every figure, and
#: tests/test_browser.py that no slide shrinks one.
MAX_FIGSIZE = (10.8, 5.8)
MIN_FONT_PT = 12


def _legible(fig):
    """Raise every text of ``fig`` below MIN_FONT_PT (tick labels, legends, annotations) to MIN_FONT_PT."""
    from matplotlib.text import Text

    for ax in fig.axes:  # tick labels are made anew when drawn: set their size on the axes
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            labels = axis.get_ticklabels()
            if not labels or labels[0].get_fontsize() < MIN_FONT_PT:
                ax.tick_params(axis=name, which="both", labelsize=MIN_FONT_PT)
        for axis in (ax.xaxis, ax.yaxis):
            axis.get_offset_text().set_fontsize(max(MIN_FONT_PT, axis.get_offset_text().get_fontsize()))
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < MIN_FONT_PT:
            text.set_fontsize(MIN_FONT_PT)


def _finish(fig, save_path, description, from_a_model=False) -> DescribedFigure:
    """Lay out ``fig``, describe it and save it; a figure of a model made with the test model says so on its face
    and in its description. ``from_a_model``: True (or a model that is the test model) for a model's results."""
    _legible(fig)
    stamp = from_a_model is not False and (getattr(from_a_model, "is_test_model", False) if from_a_model is not True
                                           else test_model_enabled())
    if stamp:  # in the title, above the figure's own titles
        fig.suptitle(TEST_MODEL_STAMP, fontsize=12, color="#A31515", weight="bold")
        description = TEST_MODEL_WORDS + description
    fig.tight_layout()
    if save_path is not None:  # atomically; an unwritable folder or a full disk is a StorageError naming the file
        write_atomically(save_path, writer=lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return DescribedFigure(fig, description)


def _counts(counts) -> str:
    return " and ".join(f"{number(value)} {name}" for name, value in counts.items())


def plot_class_counts(before, after, save_path=None):
    """Side-by-side bar charts of the classes' counts before and after balancing.

    ``before`` and ``after`` map a label name to its count, e.g. ``{"ham": 4825, "spam": 747}``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for ax, counts, title in zip(axes, (before, after), ("Full collection", "After balancing")):
        names = list(counts)
        styles = [SERIES[i % len(SERIES)] for i in range(len(names))]
        bars = ax.bar(names, [counts[n] for n in names], color=[c for c, _ in styles],
                      hatch=[h for _, h in styles], edgecolor="white")
        ax.bar_label(bars, fmt="{:,.0f}")
        ax.set_title(title)
        ax.set_ylabel("messages")
        ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylim(0, max(before.values()) * 1.15)
    description = (f"Two bar charts of messages per class (x-axis: class, y-axis: messages). Full collection: "
                   f"{_counts(before)}. After balancing: {_counts(after)}.")
    return _finish(fig, save_path, description)


def plot_token_lengths(lengths, max_length, labels=None, save_path=None):
    """Histogram of messages' token counts, with the padding length marked."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    lengths = np.asarray(lengths)
    bins = np.arange(0, max(int(lengths.max()), max_length) + 5, 5)  # edges 0, 5, …, up to 120 for the lecture
    by_class = ""
    if labels is None:
        ax.hist(lengths, bins=bins, color=HAM_COLOR)
    else:
        labels = np.asarray(labels)
        ham, spam = lengths[labels == 0], lengths[labels == 1]
        ax.hist([ham, spam], bins=bins, stacked=True, color=[HAM_COLOR, SPAM_COLOR], hatch=[HAM_HATCH, SPAM_HATCH],
                edgecolor="white", label=["ham", "spam (hatched)"])
        ax.legend(frameon=False)
        by_class = (f" Stacked by class: ham (plain) has a median of {number(np.median(ham))} tokens, spam (hatched) "
                    f"{number(np.median(spam))}." if len(ham) and len(spam) else "")
    ax.axvline(max_length, color="black", linestyle="--")
    ax.annotate(f"max_length = {max_length}", (max_length, ax.get_ylim()[1] * 0.9),
                xytext=(-8, 0), textcoords="offset points", ha="right")
    ax.set_xlabel("tokens per message")
    ax.set_ylabel("messages")
    ax.spines[["top", "right"]].set_visible(False)
    shorter = (lengths < 40).mean()
    description = (f"Histogram of tokens per message for {number(len(lengths))} messages, in bins of 5 tokens "
                   f"(x-axis: tokens per message, y-axis: messages). The median is {number(np.median(lengths))} "
                   f"tokens, {percent(shorter)} of the messages have fewer than 40, and the longest has "
                   f"{number(lengths.max())}.{by_class} A dashed line marks max_length = {max_length}, the length every "
                   "message is padded to.")
    return _finish(fig, save_path, description)


def plot_padded_batch(input_batch, pad_token_id=50256, labels=None, save_path=None):
    """One batch drawn as a grid: each row a message, real tokens dark, padding light."""
    ids = np.asarray(input_batch)
    is_pad = ids == pad_token_id
    fig, ax = plt.subplots(figsize=(10.8, min(5.8, 0.42 * len(ids) + 1.6)))
    ax.imshow(np.where(is_pad, 0.0, 1.0), aspect="auto", cmap="Greys", vmin=-0.3, vmax=1.3, interpolation="nearest")
    real = (~is_pad).sum(axis=1)
    for row, n_real in enumerate(real):
        ax.text(ids.shape[1] - 1, row, f"{n_real} tokens + {ids.shape[1] - n_real} padding", va="center",
                ha="right", color="black", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    names = [""] * len(ids) if labels is None else [f" ({('ham', 'spam')[int(labels[i])]})" for i in range(len(ids))]
    ax.set_yticks(range(len(ids)), [f"msg {i}{names[i]}" for i in range(len(ids))])
    ax.set_xlabel(f"token position (0 … {ids.shape[1] - 1}); dark = real token, light = <|endoftext|> padding")
    ax.set_title(f"One training batch: shape {list(ids.shape)}")
    rows = ", ".join(f"{n}{names[i]}" for i, n in enumerate(real))
    description = (f"Grid of one training batch of shape {list(ids.shape)}: one row per message, one column per token "
                   f"position (0 to {ids.shape[1] - 1}). Dark cells are real tokens, light cells are <|endoftext|> "
                   f"padding ({pad_token_id}) at the end of each row. Real tokens per message: {rows}; "
                   f"{percent(is_pad.mean())} of the batch is padding.")
    return _finish(fig, save_path, description)


def plot_causal_mask(tokens, save_path=None):
    """The causal attention pattern: row i (a position) may attend to columns 0…i only.

    The last row is highlighted (colour, a frame and a label): the only position that sees the whole message.
    """
    n = len(tokens)
    allowed = np.tril(np.ones((n, n)))
    shade = allowed.copy()
    shade[-1] = np.where(allowed[-1] > 0, 2.0, 0.0)
    cell = min(0.8, 3.6 / n)  # inches per token: the whole grid fits a slide
    fig, ax = plt.subplots(figsize=(cell * n + 5.2, cell * n + 2.0))
    ax.imshow(shade, cmap=plt.matplotlib.colors.ListedColormap(["#f2f2f2", HAM_COLOR, SPAM_COLOR]),
              vmin=0, vmax=2, interpolation="nearest")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, "✓" if allowed[i, j] else "·", ha="center", va="center",
                    color="white" if allowed[i, j] else "#595959", fontsize=12)
    ax.add_patch(plt.Rectangle((-0.5, n - 1.5), n, 1, fill=False, edgecolor="black", linewidth=2.5))
    ax.annotate("← sees every token", (n - 0.4, n - 1), va="center", annotation_clip=False)
    ax.set_xticks(range(n), [repr(t) for t in tokens])
    ax.set_yticks(range(n), [f"{repr(t)} (pos {i})" for i, t in enumerate(tokens)])
    ax.xaxis.tick_top()
    ax.set_xlabel("…may attend to this token")
    ax.xaxis.set_label_position("top")
    ax.set_ylabel("this position…")
    ax.set_title("Causal attention: only the last position sees every token", pad=40)
    shown = ", ".join(repr(t) for t in tokens)
    description = (f"Grid of the causal attention mask for the {n} tokens {shown}: row i is a position, column j a "
                   f"token; a check mark where position i may attend to token j (j from 0 to i), a dot where it may "
                   f"not (every later token). Only the last row, {tokens[-1]!r} at position {n - 1}, framed, sees all "
                   f"{n} tokens.")
    return _finish(fig, save_path, description)


def plot_values(epochs_seen, examples_seen, train_values, val_values, label="loss", save_path=None):
    """Training and validation curves against epochs, with examples seen on a second x-axis.

    Both axes start at 0, so a loss plot and an accuracy plot of the same run share their epoch axis;
    every measurement is drawn as a point, so even a single epoch's accuracy is visible. Empty lists (a run
    stopped before its first measurement) give an empty chart that says so.
    """
    epochs_seen, examples_seen = np.asarray(epochs_seen, dtype=float), np.asarray(examples_seen, dtype=float)
    train_values, val_values = np.asarray(train_values, dtype=float), np.asarray(val_values, dtype=float)
    fig, ax1 = plt.subplots(figsize=(8, 4.2))
    ax1.plot(epochs_seen, train_values, marker="o", markersize=4, label=f"Training {label}", color=HAM_COLOR)
    ax1.plot(epochs_seen, val_values, marker="s", markersize=4, linestyle="-.", label=f"Validation {label}",
             color=SPAM_COLOR)
    ax1.set_xlim(0, max(float(epochs_seen.max(initial=0)) * 1.02, 1.0))
    ax1.set_xlabel("Epochs")
    ax1.set_ylabel(label.capitalize())
    ax2 = ax1.twiny()  # the same x-axis, counted in examples seen
    ax2.set_xlim(0, max(float(examples_seen.max(initial=0)) * 1.02, 1.0))
    ax2.set_xlabel("Examples seen")
    shown = percent if label == "accuracy" else (lambda v: f"{v:.3f}")
    if len(train_values):
        ax1.legend(frameon=False)
        description = (f"Line chart of the training and validation {label} against epochs (x-axis, 0 to "
                       f"{number(epochs_seen.max(), 2)}; top axis: examples seen, 0 to {number(examples_seen.max())}). "
                       f"Training {label} (solid line, circles) goes from {shown(train_values[0])} to "
                       f"{shown(train_values[-1])}; validation {label} (dash-dot line, squares) from "
                       f"{shown(val_values[0])} to {shown(val_values[-1])}; {len(train_values)} measurements each.")
    else:
        ax1.text(0.5, 0.5, f"no {label} measured yet:\ntraining stopped before the first measurement",
                 ha="center", va="center", transform=ax1.transAxes)
        description = f"Empty line chart of the {label}: training stopped before its first {label} measurement."
    return _finish(fig, save_path, description, from_a_model=True)


def plot_confusion_matrix(matrix, class_names=("ham", "spam"), title="Confusion matrix", save_path=None):
    """The confusion matrix as a labelled grid: rows actual, columns predicted."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(matrix, cmap="Blues")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center", fontsize=14,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(class_names)), [f"predicted\n{n}" for n in class_names])
    ax.set_yticks(range(len(class_names)), [f"actual\n{n}" for n in class_names])
    ax.set_title(title)
    rows = "; ".join(f"actual {actual}: " + ", ".join(f"{number(matrix[i, j])} predicted {predicted}"
                                                      for j, predicted in enumerate(class_names))
                     for i, actual in enumerate(class_names))
    total = matrix.sum()
    correct = np.trace(matrix)
    description = (f"Confusion matrix, {title}: rows are the actual class, columns the predicted class, each cell "
                   f"the number of messages. {rows}. {number(correct)} of {number(total)} correct"
                   + (f" ({percent(correct / total)})." if total else "."))
    return _finish(fig, save_path, description, from_a_model=True)


def plot_performance(table, save_path=None):
    """float32, int8 (and bf16) side by side: size on disk, latency and throughput (from ``compare_fp32_int8``)."""
    fig, axes = plt.subplots(1, 3, figsize=(10.8, 4.4))
    names = list(table.index)
    styles = SERIES[:len(names)]
    bars = axes[0].bar([name.split(" (")[0] for name in names], table["size on disk (MB)"],
                       color=[c for c, _ in styles], hatch=[h for _, h in styles], edgecolor="white")
    axes[0].bar_label(bars, fmt="{:.1f}")
    axes[0].set_title("Size on disk (MB)")
    width = 0.76 / len(names)
    for i, name in enumerate(names):
        x = np.arange(2) + (i - (len(names) - 1) / 2) * width
        axes[1].bar(x, table.loc[name, ["latency median (ms)", "latency p95 (ms)"]], width, color=styles[i][0],
                    hatch=styles[i][1], edgecolor="white", label=name)
    axes[1].set_xticks(range(2), ["median", "p95"])
    axes[1].set_title("Latency per message (ms)")
    throughput_cols = [c for c in table.columns if c.startswith("msgs/s")]
    for i, name in enumerate(names):
        x = np.arange(len(throughput_cols)) + (i - (len(names) - 1) / 2) * width
        axes[2].bar(x, table.loc[name, throughput_cols], width, color=styles[i][0], hatch=styles[i][1],
                    edgecolor="white", label=name)
    axes[2].set_xticks(range(len(throughput_cols)), [c.split("@ ")[1] for c in throughput_cols])
    axes[2].set_xlabel("messages per batch")
    axes[2].set_title("Throughput (messages / s)")
    axes[2].set_ylim(0, table[throughput_cols].to_numpy().max() * 1.3)
    axes[2].legend(frameon=False, loc="upper left", ncols=2)
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
    versions = "; ".join(
        f"{name}: {number(table.loc[name, 'size on disk (MB)'], 4)} MB, latency median "
        f"{number(table.loc[name, 'latency median (ms)'])} ms and p95 {number(table.loc[name, 'latency p95 (ms)'])} ms, "
        + ", ".join(f"{number(table.loc[name, c])} messages/s at batch {c.split('@ ')[1]}" for c in throughput_cols)
        for name in names)
    description = (f"Three bar charts comparing {', '.join(names)}: size on disk in MB, latency per message in "
                   f"milliseconds (median and 95th percentile), and throughput in messages per second by batch size. "
                   f"{versions}.")
    return _finish(fig, save_path, description, from_a_model=True)


def _human(number):
    """3.32M, 50.2k, 7.13, 0.071: short labels for numbers that span many orders of magnitude."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.3g}{suffix}"
    return f"{number:.3g}"


def plot_strategies(table, save_path=None):
    """Test accuracy, training time and trainable parameters of each fine-tuning strategy (log scales)."""
    fig, axes = plt.subplots(1, 3, figsize=(10.8, min(5.8, 0.42 * len(table) + 1.6)), sharey=True)
    names = list(table.index)
    is_baseline = ["bag of words" in name for name in names]
    colors = [SPAM_COLOR if baseline else HAM_COLOR for baseline in is_baseline]
    hatches = [SPAM_HATCH if baseline else HAM_HATCH for baseline in is_baseline]
    columns = (("test accuracy", "Test accuracy", False), ("training time (s)", "Training time (s)", True),
               ("trainable parameters", "Trainable parameters", True))
    for ax, (column, title, log) in zip(axes, columns):
        values = table[column].astype(float)
        bars = ax.barh(names, values, color=colors, hatch=hatches, edgecolor="white")
        ax.bar_label(bars, fmt="{:.1%}" if column == "test accuracy" else _human, padding=3)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(plt.NullFormatter())  # 10^k labels only: minor ones overlap
        else:
            ax.set_xlim(0, 1.15)
        ax.set_title(title)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].invert_yaxis()
    rows = "; ".join(f"{name}: {percent(table.loc[name, 'test accuracy'])}, {_human(table.loc[name, 'training time (s)'])} s, "
                     f"{_human(table.loc[name, 'trainable parameters'])} parameters" for name in names)
    description = (f"Three horizontal bar charts, one bar per strategy ({len(names)} strategies; the bag-of-words "
                   "baselines hatched): test accuracy, training time in seconds (log scale) and trainable parameters "
                   f"(log scale). {rows}.")
    return _finish(fig, save_path, description, from_a_model=True)


def plot_pretraining_effect(table, save_path=None):
    """Pretrained against random weights, the same recipe (every layer trains): validation and test accuracy,
    with the published test accuracy (another split) as a mark where the table has it.

    ``table`` is notebook 7's comparison table; it needs the rows "all layers" and
    "random weights, all layers (no pretraining)".
    """
    rows = {"pretrained GPT-2 (transfer learning)": "all layers",
            "random weights (from scratch)": "random weights, all layers (no pretraining)"}
    missing = [row for row in rows.values() if row not in table.index]
    if missing:
        raise ValueError(f"the table lacks the rows {missing}: run those strategies first")
    fig, ax = plt.subplots(figsize=(9, 4.6))
    names = list(rows)
    positions = np.arange(len(names))
    described = []
    for offset, column, (color, hatch) in ((-0.2, "validation accuracy", SERIES[0]), (0.2, "test accuracy", SERIES[1])):
        values = [table.loc[rows[name], column] * 100 for name in names]
        bars = ax.bar(positions + offset, values, width=0.38, color=color, hatch=hatch, edgecolor="white",
                      label=f"{column}, this run")
        ax.bar_label(bars, fmt="{:.1f}")
        described.append(f"{column}: " + ", ".join(f"{name} {v:.1f} %" for name, v in zip(names, values)))
    published = [c for c in table.columns if c.startswith("published test accuracy")]
    if published:
        values = [table.loc[rows[name], published[0]] * 100 for name in names]
        ax.scatter(positions + 0.2, values, marker="_", s=900, color="black", zorder=3,
                   label="published test accuracy (another split)")
        described.append("published test accuracy (another split, black marks): "
                         + ", ".join(f"{name} {v:.2f} %" for name, v in zip(names, values)))
    ax.set_xticks(positions, names)
    ax.set_ylim(0, 145)  # the legend sits above 100 %, clear of the bars
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("accuracy (%)")
    ax.set_title("The same recipe, with and without pretraining")
    ax.legend(loc="upper center", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    description = ("Grouped bar chart of accuracy in percent for the same recipe (every layer trains) from GPT-2's "
                   "pretrained weights and from random weights; plain bars validation, hatched bars test. "
                   + "; ".join(described) + ".")
    return _finish(fig, save_path, description, from_a_model=True)


#: Published facts about pretraining GPT-2 small from scratch (the slide's "weeks/months, massive data"):
#: nanoGPT (github.com/karpathy/nanoGPT, README) reproduces GPT-2 (124M) on OpenWebText in about 4 days on one
#: node of 8 A100 GPUs, and its data/openwebtext/prepare.py counts about 9 billion training tokens.
PRETRAINING_GPU_HOURS = 8 * 4 * 24
PRETRAINING_TOKENS = 9e9
#: The book: the classifier fine-tunes in under half a minute on an A100 (chapter 6).
FINE_TUNING_GPU_HOURS = 0.5 / 60


def plot_transfer_learning(fine_tuning_tokens, save_path=None):
    """The slide's contrast, with numbers: training GPT-2 small from scratch against fine-tuning it into the
    classifier, in GPU time and in training data (log scales). ``fine_tuning_tokens``: the fine-tuning data's size in
    tokens (e.g. the training set's tokens: notebook 7 counts them)."""
    fig, axes = plt.subplots(1, 2, figsize=(10.8, 3.6))
    names = ["from scratch:\npretraining GPT-2", "transfer learning:\nfine-tuning the classifier"]
    panels = (("A100 GPU time (hours, log scale)", [PRETRAINING_GPU_HOURS, FINE_TUNING_GPU_HOURS],
               lambda h: f"{h:,.0f} h" if h >= 1 else f"{h * 3600:.0f} s"),
              ("training data (tokens, log scale)", [PRETRAINING_TOKENS, float(fine_tuning_tokens)], _human))
    for ax, (title, values, fmt) in zip(axes, panels):
        bars = ax.barh(names, values, color=[BLUE, VERMILLION], hatch=["", "//"], edgecolor="white")
        ax.bar_label(bars, labels=[fmt(v) for v in values], padding=4)
        ax.set_xscale("log")
        ax.set_xlim(min(values) / 10, max(values) * 30)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_title(title)
        ax.invert_yaxis()
        ax.spines[["top", "right"]].set_visible(False)
    axes[1].set_yticks([])
    description = ("Two horizontal bar charts on log scales, from scratch against transfer learning. A100 GPU time: "
                   f"pretraining GPT-2 small about {PRETRAINING_GPU_HOURS:,} GPU-hours (4 days on 8 GPUs, nanoGPT's "
                   f"reproduction), fine-tuning the classifier about {FINE_TUNING_GPU_HOURS * 3600:.0f} seconds (the "
                   f"book). Training data: about {_human(PRETRAINING_TOKENS)} tokens of web text against "
                   f"{_human(fine_tuning_tokens)} tokens of labelled messages.")
    return _finish(fig, save_path, description)
