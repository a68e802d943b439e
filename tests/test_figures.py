"""Teaching figures: they show what the model and the data really are."""
import matplotlib
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
    assert any(f"[{ids[0]}, {ids[1]}, {ids[2]}, …]" in t for t in labels)
    assert any(f"{len(ids)} real + padding" in t for t in labels)
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
