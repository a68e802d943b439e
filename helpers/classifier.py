"""Model surgery: a pretrained GPT-2 becomes a classifier (notebook 3's steps, in one place)."""
import torch

from . import settings
from .data import check_settings
from .gpt import GPTModel, count_parameters, get_model_config
from .weights import download_and_load_gpt2, get_device


def prepare_for_classification(model: GPTModel, num_classes=2, seed=123) -> GPTModel:
    """Freeze everything, swap the vocabulary head for a ``num_classes`` head, unfreeze the top.

    Trainable afterwards: the last transformer block, the final LayerNorm and the new head (seeded,
    so every run starts from the same head).
    """
    # Freeze most layers
    for param in model.parameters():
        param.requires_grad = False

    # Replace the output head with a classification layer (trainable by default)
    torch.manual_seed(seed)
    model.out_head = torch.nn.Linear(in_features=model.cfg["emb_dim"], out_features=num_classes)
    model.out_head.to(model.tok_emb.weight.device)

    # Unfreeze the last transformer block and the final layer norm
    for param in model.trf_blocks[-1].parameters():
        param.requires_grad = True
    for param in model.final_norm.parameters():
        param.requires_grad = True
    return model


def unfreeze_top(model, trainable_blocks=1):
    """Make the last ``trainable_blocks`` transformer blocks and the final LayerNorm trainable."""
    for block in model.trf_blocks[len(model.trf_blocks) - trainable_blocks:]:
        for param in block.parameters():
            param.requires_grad = True
    for param in model.final_norm.parameters():
        param.requires_grad = True
    return model


def check_classifier(model):
    """A clear error when ``model`` still has GPT-2's language-model head (the surgery was not done), or is no model."""
    if not callable(model) or isinstance(model, (str, bytes)) or hasattr(model, "encode"):
        raise TypeError(f"model must be the classifier (a GPTModel after the surgery), got {type(model).__name__}; "
                        "are the arguments in the order (..., model, tokenizer, device)?")
    head, cfg = getattr(model, "out_head", None), getattr(model, "cfg", None)
    if head is not None and cfg is not None and head.out_features == cfg["vocab_size"]:
        raise ValueError(f"this model still predicts the {cfg['vocab_size']} tokens of GPT-2's vocabulary, not "
                         "classes: it is the pretrained language model. Replace its head first with "
                         "prepare_for_classification(model) (notebook 3), or use build_spam_classifier().")


def classifier_parameter_counts(model_size="gpt2-small (124M)", num_classes=2) -> dict:
    """Parameter counts of a GPT-2 size before and after surgery, computed without any weights.

    The model is built on PyTorch's "meta" device, which records shapes but allocates nothing,
    so this is instant and needs no download.
    """
    with torch.device("meta"):
        model = GPTModel(get_model_config(model_size))
        _, pretrained_total = count_parameters(model)
        prepare_for_classification(model, num_classes)
    trainable, total = count_parameters(model)
    return {"pretrained_total": pretrained_total, "classifier_total": total, "classifier_trainable": trainable}


def build_spam_classifier(model_size=settings.MODEL_SIZE, device=None, num_classes=None) -> GPTModel:
    """Pretrained GPT-2 (or the announced test model) with notebook 3's surgery applied, on ``device``.

    ``num_classes`` defaults to the data's classes (``settings.CLASS_NAMES``: 2 for ham and spam). The settings
    are checked first (``check_settings``)."""
    check_settings()
    num_classes = len(settings.CLASS_NAMES) if num_classes is None else num_classes
    model = download_and_load_gpt2(model_size)
    prepare_for_classification(model, num_classes)
    return model.to(device or get_device())
