"""Teaching figures: they show what the model and the data really are."""
import matplotlib
import matplotlib.pyplot
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from helpers import (  # noqa: E402
    GPTModel,
    get_model_config,
    plot_model_surgery,
    plot_pipeline,
    plot_token_lengths,
    plot_training_loop,
    plot_values,
    prepare_for_classification,
)
from helpers.classifier import unfreeze_top  # noqa: E402


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def gpt2_small_classifier(trainable_blocks=1):
    with torch.device("meta"):
        return unfreeze_top(prepare_for_classification(GPTModel(get_model_config("gpt2-small (124M)"))),
                            trainable_blocks=trainable_blocks)


def test_surgery_diagram_reads_which_layers_train():
    lecture = texts(plot_model_surgery(gpt2_small_classifier()))
    assert lecture.count("trains") == 3 and "frozen" in lecture  # block 12, final norm, head
    assert any("Linear(768 → 2)" in t for t in lecture) and any("Linear(768 → 50,257)" in t for t in lecture)
    assert any("transformer block 12   (7.1 M parameters)" == t for t in lecture)
    two_blocks = texts(plot_model_surgery(unfreeze_top(gpt2_small_classifier(), trainable_blocks=2)))
    assert two_blocks.count("trains") == 4


def test_surgery_diagram_of_a_small_model_shows_every_block():
    torch.manual_seed(0)
    model = prepare_for_classification(GPTModel({"vocab_size": 100, "context_length": 8, "emb_dim": 8,
                                                 "n_heads": 2, "n_layers": 3, "drop_rate": 0.0, "qkv_bias": True}))
    labels = texts(plot_model_surgery(model, vocab_size=100))
    assert sum(t.startswith("transformer block") for t in labels) == 3
    assert not any("⋮" in t for t in labels)


def test_pipeline_shows_the_real_token_ids(tokenizer=None):
    from helpers import get_gpt2_tokenizer

    tokenizer = get_gpt2_tokenizer()
    ids = tokenizer.encode("WIN a free cruise!")
    labels = texts(plot_pipeline("WIN a free cruise!", tokenizer, 120))
    assert any(f"[{ids[0]}, …]" in t for t in labels)
    assert any(f"{len(ids)} real" in t for t in labels)
    assert len(plot_training_loop().axes[0].patches) >= 8  # four moves, their arrows, the evaluation box


def test_curves_share_the_epoch_axis_and_show_single_points():
    loss = plot_values(torch.linspace(0, 1, 3), torch.linspace(0, 1040, 3), [0.7, 0.5, 0.4], [0.7, 0.6, 0.5])
    accuracy = plot_values(torch.tensor([1.0]), torch.tensor([1040.0]), [0.6], [0.55], label="accuracy")
    assert loss.axes[0].get_xlim() == pytest.approx(accuracy.axes[0].get_xlim())
    assert loss.axes[1].get_xlim() == pytest.approx(accuracy.axes[1].get_xlim())
    assert accuracy.axes[0].lines[0].get_marker() == "o"  # one epoch's accuracy is a visible point


def test_token_length_bins_end_at_max_length():
    fig = plot_token_lengths(np.array([3, 40, 120, 117]), 120)
    edges = [patch.get_x() + patch.get_width() for patch in fig.axes[0].patches]
    assert max(edges) == pytest.approx(120)


def test_figures_of_a_models_results_say_when_they_come_from_the_test_model(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from helpers import plot_class_counts, plot_confusion_matrix
    from helpers.figures.plots import TEST_MODEL_STAMP

    def stamped(fig):
        return any(text.get_text() == TEST_MODEL_STAMP for text in fig.texts)

    matrix = torch.tensor([[40, 10], [5, 45]])
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    assert stamped(plot_confusion_matrix(matrix))
    assert not stamped(plot_class_counts({"ham": 3, "spam": 1}, {"ham": 1, "spam": 1}))  # the data: no model
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    assert not stamped(plot_confusion_matrix(matrix))


def every_figure():
    """One of each figure the notebooks draw, from data shaped like the notebooks' (largest cases)."""
    import pandas as pd

    from helpers import (STRATEGIES, get_gpt2_tokenizer, plot_causal_mask, plot_class_counts, plot_confusion_matrix,
                         plot_llm_stages, plot_padded_batch, plot_performance, plot_pretraining_effect, plot_strategies,
                         plot_transfer_learning)

    rng = np.random.default_rng(0)
    ids = torch.full((8, 120), 50256)
    for row in range(8):
        ids[row, :rng.integers(5, 121)] = 1000
    performance = pd.DataFrame({"size on disk (MB)": [475.0, 180.0, 240.0], "latency median (ms)": [30, 20, 15],
                                "latency p95 (ms)": [40, 30, 20], "msgs/s @ 1": [30, 40, 60], "msgs/s @ 32": [200, 300, 500]},
                               index=["float32", "int8 (dynamic)", "bf16 (autocast)"])
    names = [*STRATEGIES, "bag of words: logistic regression", "bag of words: naive Bayes"]
    table = pd.DataFrame({"test accuracy": rng.random(len(names)), "validation accuracy": rng.random(len(names)),
                          "training time (s)": 10 ** rng.uniform(-1, 4, len(names)),
                          "trainable parameters": 10 ** rng.uniform(3, 8, len(names)),
                          "published test accuracy (another split)": rng.random(len(names))}, index=names)
    return {
        "model surgery": plot_model_surgery(gpt2_small_classifier()),
        "pipeline": plot_pipeline("WINNER!! You have won a free cruise", get_gpt2_tokenizer(), 120),
        "training loop": plot_training_loop(),
        "LLM stages": plot_llm_stages(),
        "class counts": plot_class_counts({"ham": 4825, "spam": 747}, {"ham": 747, "spam": 747}),
        "token lengths": plot_token_lengths(rng.integers(2, 121, 1045), 120, labels=rng.integers(0, 2, 1045)),
        "padded batch": plot_padded_batch(ids, labels=[0, 1] * 4),
        "causal mask": plot_causal_mask(["Free", " money", "!", " Click", " now", " to", " claim"]),
        "learning curves": plot_values(torch.linspace(0, 5, 14), torch.linspace(0, 5200, 14), rng.random(14), rng.random(14)),
        "confusion matrix": plot_confusion_matrix([[140, 10], [5, 145]]),
        "performance": plot_performance(performance),
        "strategies": plot_strategies(table),
        "pretraining effect": plot_pretraining_effect(table),
        "transfer learning": plot_transfer_learning(27_000),
    }


def test_every_figure_is_legible_on_a_1280x720_slide(monkeypatch):
    """No figure is larger than a slide's figure area (so it is shown unscaled), none has text under 12 pt
    (about 17 px at 100 dpi), and no text runs off the figure's edge."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from helpers.figures.plots import MAX_FIGSIZE, MIN_FONT_PT

    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")  # with the stamp: the tallest each gets
    problems = []
    for name, fig in every_figure().items():
        width, height = fig.get_size_inches()
        if width > MAX_FIGSIZE[0] + 1e-6 or height > MAX_FIGSIZE[1] + 1e-6:
            problems.append(f"{name}: {width:.1f} x {height:.1f} in, larger than {MAX_FIGSIZE}")
        canvas = FigureCanvasAgg(fig.figure)  # a figure is closed once described (shown by its own display)
        canvas.draw()
        renderer, box = canvas.get_renderer(), fig.bbox
        for text in fig.findobj(Text):
            if not (text.get_visible() and text.get_text().strip()):
                continue
            if text.get_fontsize() < MIN_FONT_PT:
                problems.append(f"{name}: {text.get_text()!r} at {text.get_fontsize():.1f} pt")
        drawn = [ax.get_tightbbox(renderer) for ax in fig.axes] + [t.get_window_extent(renderer) for t in fig.texts]
        for extent in drawn:  # what is drawn: tick labels, titles, labels, legends, annotations
            if extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1 or extent.y0 < box.y0 - 1 or extent.y1 > box.y1 + 1:
                problems.append(f"{name}: something runs off the figure ({extent} outside {box})")
    assert not problems, "\n".join(problems)


def test_every_figure_carries_a_description_of_its_own_data_as_alt_text(monkeypatch):
    """A screen reader reads each figure's alt text: the chart type, its axes and the numbers that matter, written
    from the data the figure was drawn from (WCAG 2.1 AA, 1.1.1)."""
    import html
    import re

    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    figures = every_figure()
    for name, fig in figures.items():
        bundle = fig._repr_mimebundle_()
        alt = re.search(r'<img [^>]*alt="([^"]*)"', bundle["text/html"])
        assert alt and html.unescape(alt[1]) == fig.description == bundle["text/plain"], name
        assert len(fig.description) > 80 and "TEST MODEL" not in fig.description.upper(), name
    d = {name: fig.description for name, fig in figures.items()}
    assert d["class counts"].startswith("Two bar charts") and "4,825 ham and 747 spam" in d["class counts"]
    assert "747 ham and 747 spam" in d["class counts"]
    assert "actual ham: 140 predicted ham, 10 predicted spam; actual spam: 5 predicted ham, 145 predicted spam" in \
        d["confusion matrix"] and "285 of 300 correct (95.0 %)" in d["confusion matrix"]
    assert "shape [8, 120]" in d["padded batch"] and "max_length = 120" in d["token lengths"]
    assert "transformer block 12 (7.1 M parameters, trains)" in d["model surgery"]
    assert "'Free', ' money'" in d["causal mask"] and "sees all 7 tokens" in d["causal mask"]
    assert "8 classification fine-tuning" in d["LLM stages"] and "9 instruction fine-tuning" in d["LLM stages"]
    assert "float32: 475 MB" in d["performance"] and "500 messages/s at batch 32" in d["performance"]
    assert "from scratch" in d["transfer learning"] and "27k tokens" in d["transfer learning"]


def test_a_figure_from_the_test_model_says_so_in_its_description(monkeypatch):
    from helpers import plot_confusion_matrix, plot_model_surgery

    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    assert plot_confusion_matrix([[3, 1], [0, 4]]).description.startswith("Made with the test model")
    surgery = plot_model_surgery(gpt2_small_classifier())  # GPT-2 small's architecture: not the test model
    assert not surgery.description.startswith("Made with the test model")
    model = gpt2_small_classifier()
    model.is_test_model = True
    assert plot_model_surgery(model).description.startswith("Made with the test model")


def test_an_interrupted_run_plots_what_it_measured():
    empty = plot_values([], [], [], [], label="accuracy")
    assert "stopped before its first accuracy measurement" in empty.description
    partial = plot_values(torch.linspace(0, 0.3, 2), torch.linspace(0, 320, 2), [0.7, 0.6], [0.71, 0.65])
    assert "2 measurements each" in partial.description and "from 0.700 to 0.600" in partial.description
