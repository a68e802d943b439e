"""Figures the notebooks draw. Each returns its matplotlib Figure (and can save it as PNG)."""
import matplotlib.pyplot as plt
import numpy as np

from ..storage.files import write_atomically
from ..weights import test_model_enabled

HAM_COLOR, SPAM_COLOR = "#4C72B0", "#DD8452"


TEST_MODEL_STAMP = "TEST MODEL: random weights, not GPT-2's results"
#: Sized for a 1280x720 slide: no figure is larger than this (inches at 100 dpi: 1240 x 580 px, the room a
#: figure gets on a slide, notebooks/rise.css), so it is shown unscaled, and no text is smaller than
#: MIN_FONT_PT (12 pt at 100 dpi: about 17 px on the slide). tests/test_figures.py checks every figure.
MAX_FIGSIZE = (12.4, 5.8)
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


def _finish(fig, save_path, from_a_model=False):
    """Lay out and save ``fig``; a figure of a model's results made with the test model says so on its face."""
    _legible(fig)
    stamp = from_a_model and test_model_enabled()
    if stamp:  # in the title, above the figure's own titles
        fig.suptitle(TEST_MODEL_STAMP, fontsize=12, color="#B22222", weight="bold")
    fig.tight_layout()
    if save_path is not None:  # atomically; an unwritable folder or a full disk is a StorageError naming the file
        write_atomically(save_path, writer=lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return fig


def plot_class_counts(before, after, save_path=None):
    """Side-by-side bar charts of ham/spam counts before and after balancing.

    ``before`` and ``after`` map a label name to its count, e.g. ``{"ham": 4825, "spam": 747}``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for ax, counts, title in zip(axes, (before, after), ("Full collection", "After balancing")):
        names = list(counts)
        bars = ax.bar(names, [counts[n] for n in names], color=[HAM_COLOR, SPAM_COLOR][: len(names)])
        ax.bar_label(bars, fmt="{:,.0f}")
        ax.set_title(title)
        ax.set_ylabel("messages")
        ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylim(0, max(before.values()) * 1.15)
    return _finish(fig, save_path)


def plot_token_lengths(lengths, max_length, labels=None, save_path=None):
    """Histogram of messages' token counts, with the padding length marked."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    lengths = np.asarray(lengths)
    bins = np.arange(0, max(int(lengths.max()), max_length) + 5, 5)  # edges 0, 5, …, up to 120 for the lecture
    if labels is None:
        ax.hist(lengths, bins=bins, color=HAM_COLOR)
    else:
        labels = np.asarray(labels)
        ax.hist([lengths[labels == 0], lengths[labels == 1]], bins=bins, stacked=True,
                color=[HAM_COLOR, SPAM_COLOR], label=["ham", "spam"])
        ax.legend(frameon=False)
    ax.axvline(max_length, color="black", linestyle="--")
    ax.annotate(f"max_length = {max_length}", (max_length, ax.get_ylim()[1] * 0.9),
                xytext=(-8, 0), textcoords="offset points", ha="right")
    ax.set_xlabel("tokens per message")
    ax.set_ylabel("messages")
    ax.spines[["top", "right"]].set_visible(False)
    return _finish(fig, save_path)


def plot_padded_batch(input_batch, pad_token_id=50256, labels=None, save_path=None):
    """One batch drawn as a grid: each row a message, real tokens coloured, padding grey."""
    ids = np.asarray(input_batch)
    is_pad = ids == pad_token_id
    fig, ax = plt.subplots(figsize=(11, min(5.8, 0.42 * len(ids) + 1.6)))
    ax.imshow(np.where(is_pad, 0.0, 1.0), aspect="auto", cmap="Greys", vmin=-0.3, vmax=1.3, interpolation="nearest")
    for row, n_real in enumerate((~is_pad).sum(axis=1)):
        ax.text(ids.shape[1] - 1, row, f"{n_real} tokens + {ids.shape[1] - n_real} padding", va="center",
                ha="right", color="black", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    ytick_labels = [f"msg {i}" + ("" if labels is None else f" ({('ham', 'spam')[int(labels[i])]})") for i in range(len(ids))]
    ax.set_yticks(range(len(ids)), ytick_labels)
    ax.set_xlabel(f"token position (0 … {ids.shape[1] - 1}); dark = real token, light = <|endoftext|> padding")
    ax.set_title(f"One training batch: shape {list(ids.shape)}")
    return _finish(fig, save_path)


def plot_causal_mask(tokens, save_path=None):
    """The causal attention pattern: row i (a position) may attend to columns 0…i only.

    The last row is highlighted: it is the only position that sees the whole message.
    """
    n = len(tokens)
    allowed = np.tril(np.ones((n, n)))
    shade = allowed.copy()
    shade[-1] = np.where(allowed[-1] > 0, 2.0, 0.0)
    cell = min(0.8, 3.6 / n)  # inches per token: the whole grid fits a slide
    fig, ax = plt.subplots(figsize=(cell * n + 4.0, cell * n + 2.0))
    ax.imshow(shade, cmap=plt.matplotlib.colors.ListedColormap(["#f2f2f2", HAM_COLOR, SPAM_COLOR]),
              vmin=0, vmax=2, interpolation="nearest")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, "✓" if allowed[i, j] else "·", ha="center", va="center",
                    color="white" if allowed[i, j] else "#999999", fontsize=12)
    ax.set_xticks(range(n), [repr(t) for t in tokens])
    ax.set_yticks(range(n), [f"{repr(t)} (pos {i})" for i, t in enumerate(tokens)])
    ax.xaxis.tick_top()
    ax.set_xlabel("…may attend to this token")
    ax.xaxis.set_label_position("top")
    ax.set_ylabel("this position…")
    ax.set_title("Causal attention: only the last position sees every token", pad=40)
    return _finish(fig, save_path)


def plot_values(epochs_seen, examples_seen, train_values, val_values, label="loss", save_path=None):
    """Training and validation curves against epochs, with examples seen on a second x-axis.

    Both axes start at 0, so a loss plot and an accuracy plot of the same run share their epoch axis;
    every measurement is drawn as a point, so even a single epoch's accuracy is visible.
    """
    fig, ax1 = plt.subplots(figsize=(8, 4.2))
    ax1.plot(epochs_seen, train_values, marker="o", markersize=3, label=f"Training {label}", color=HAM_COLOR)
    ax1.plot(epochs_seen, val_values, marker="s", markersize=3, linestyle="-.", label=f"Validation {label}",
             color=SPAM_COLOR)
    ax1.set_xlim(0, float(max(epochs_seen)) * 1.02)
    ax1.set_xlabel("Epochs")
    ax1.set_ylabel(label.capitalize())
    ax1.legend(frameon=False)
    ax2 = ax1.twiny()  # the same x-axis, counted in examples seen
    ax2.set_xlim(0, float(max(examples_seen)) * 1.02)
    ax2.set_xlabel("Examples seen")
    return _finish(fig, save_path, from_a_model=True)


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
    return _finish(fig, save_path, from_a_model=True)


def plot_performance(table, save_path=None):
    """float32, int8 (and bf16) side by side: size on disk, latency and throughput (from ``compare_fp32_int8``)."""
    fig, axes = plt.subplots(1, 3, figsize=(12.4, 4.4))
    names = list(table.index)
    colors = [HAM_COLOR, SPAM_COLOR, "#7f7f7f"][:len(names)]
    bars = axes[0].bar([name.replace(" (", "\n(") for name in names], table["size on disk (MB)"], color=colors)
    axes[0].bar_label(bars, fmt="{:.1f}")
    axes[0].set_title("Size on disk (MB)")
    width = 0.76 / len(names)
    for i, name in enumerate(names):
        x = np.arange(2) + (i - (len(names) - 1) / 2) * width
        axes[1].bar(x, table.loc[name, ["latency median (ms)", "latency p95 (ms)"]], width, color=colors[i], label=name)
    axes[1].set_xticks(range(2), ["median", "p95"])
    axes[1].set_title("Latency per message (ms)")
    throughput_cols = [c for c in table.columns if c.startswith("msgs/s")]
    for i, name in enumerate(names):
        x = np.arange(len(throughput_cols)) + (i - (len(names) - 1) / 2) * width
        axes[2].bar(x, table.loc[name, throughput_cols], width, color=colors[i], label=name)
    axes[2].set_xticks(range(len(throughput_cols)), [c.split("@ ")[1] for c in throughput_cols])
    axes[2].set_title("Throughput (messages / s)")
    axes[2].set_ylim(0, table[throughput_cols].to_numpy().max() * 1.3)
    axes[2].legend(frameon=False, loc="upper left", ncols=2)
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
    return _finish(fig, save_path, from_a_model=True)


def _human(number):
    """3.32M, 50.2k, 7.13, 0.071: short labels for numbers that span many orders of magnitude."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            return f"{number / limit:.3g}{suffix}"
    return f"{number:.3g}"


def plot_strategies(table, save_path=None):
    """Test accuracy, training time and trainable parameters of each fine-tuning strategy (log scales)."""
    fig, axes = plt.subplots(1, 3, figsize=(12.4, min(5.8, 0.42 * len(table) + 1.6)), sharey=True)
    names = list(table.index)
    is_baseline = ["bag of words" in name for name in names]
    colors = [SPAM_COLOR if baseline else HAM_COLOR for baseline in is_baseline]
    columns = (("test accuracy", "Test accuracy", False), ("training time (s)", "Training time (s)", True),
               ("trainable parameters", "Trainable parameters", True))
    for ax, (column, title, log) in zip(axes, columns):
        values = table[column].astype(float)
        bars = ax.barh(names, values, color=colors)
        ax.bar_label(bars, fmt="{:.1%}" if column == "test accuracy" else _human, padding=3)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(plt.NullFormatter())  # 10^k labels only: minor ones overlap
        else:
            ax.set_xlim(0, 1.15)
        ax.set_title(title)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].invert_yaxis()
    return _finish(fig, save_path, from_a_model=True)


def plot_transfer_learning(table, save_path=None):
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
    for offset, column, color in ((-0.2, "validation accuracy", HAM_COLOR), (0.2, "test accuracy", SPAM_COLOR)):
        values = [table.loc[rows[name], column] * 100 for name in names]
        bars = ax.bar(positions + offset, values, width=0.38, color=color, label=f"{column}, this run")
        ax.bar_label(bars, fmt="{:.1f}")
    published = [c for c in table.columns if c.startswith("published test accuracy")]
    if published:
        values = [table.loc[rows[name], published[0]] * 100 for name in names]
        ax.scatter(positions + 0.2, values, marker="_", s=900, color="black", zorder=3,
                   label="published test accuracy (another split)")
    ax.set_xticks(positions, names)
    ax.set_ylim(0, 145)  # the legend sits above 100 %, clear of the bars
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("accuracy (%)")
    ax.set_title("The same recipe, with and without pretraining")
    ax.legend(loc="upper center", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _finish(fig, save_path, from_a_model=True)
