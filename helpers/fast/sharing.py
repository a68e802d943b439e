"""A second classifier without a second GPT-2 in memory: it shares another classifier's frozen trunk.

Notebook 4 trains the lecture's classifier and then the fast engine's (exact, flexible, bf16), each one
GPT-2 after the lecture's surgery. Loaded separately they would hold four copies of the same frozen
500 MB. :func:`classifier_sharing_trunk` builds what ``build_spam_classifier`` builds, except that its
embeddings and every block but the last *are* the given classifier's modules: the same tensors, frozen
in both. Only the part that trains is its own: the last block and the final LayerNorm, read from GPT-2's
file as they were pretrained, and the seeded 2-class head. The lecture's classes are not changed; the new
model is a plain ``GPTModel`` that holds some of the other's modules.
"""
import torch
import torch.nn as nn

from .. import settings
from ..classifier import prepare_for_classification
from ..gpt import GPTModel, TransformerBlock, get_model_config
from ..storage.paths import display_path
from ..weights import GPT2Tensors, build_test_model, copy_block_weights, gpt2_weights_path
from .engine import FastEngineError, plain_model


def _trunk_modules(model):
    return [("tok_emb", model.tok_emb), ("pos_emb", model.pos_emb),
            *((f"trf_blocks.{i}", block) for i, block in enumerate(model.trf_blocks[:-1]))]


def _differs(module, reference) -> bool:
    mine, theirs = module.state_dict(), reference.state_dict()
    return mine.keys() != theirs.keys() or any(not torch.equal(mine[k], theirs[k].to(mine[k].device)) for k in mine)


def _pretrained_top(model, model_size):
    """GPT-2's last block and final LayerNorm as pretrained (new modules), after checking that ``model``'s
    trunk holds GPT-2's pretrained weights, tensor for tensor (one block in memory at a time)."""
    cfg = model.cfg
    if getattr(model, "is_test_model", False):
        reference = build_test_model()  # the same seeded random model (prints its banner)
        for name, module in _trunk_modules(model):
            if _differs(module, reference.get_submodule(name)):
                return name, None
        return None, (reference.trf_blocks[-1], reference.final_norm)
    if dict(cfg) != get_model_config(model_size):
        raise FastEngineError(f"the classifier is not {model_size} (its configuration differs): pass its model_size")
    path = gpt2_weights_path(model_size)
    tensors = GPT2Tensors(path, display_path(path))
    with torch.no_grad():
        for name, module, file_name in (("tok_emb", model.tok_emb, "wte.weight"), ("pos_emb", model.pos_emb, "wpe.weight")):
            if not tensors.matches(file_name, module.weight):
                return name, None
        scratch = TransformerBlock(cfg)
        for index, block in enumerate(model.trf_blocks[:-1]):
            if _differs(block, copy_block_weights(scratch, tensors, index)):
                return f"trf_blocks.{index}", None
        top = copy_block_weights(TransformerBlock(cfg), tensors, len(model.trf_blocks) - 1)
        norm = type(model.final_norm)(cfg["emb_dim"])
        norm.scale.copy_(tensors["ln_f.weight"])
        norm.shift.copy_(tensors["ln_f.bias"])
    return None, (top, norm)


def classifier_sharing_trunk(model, model_size=None, num_classes=None):
    """What ``build_spam_classifier()`` returns, without loading GPT-2 again: a fresh classifier (GPT-2 after
    the lecture's surgery, its head seeded) whose frozen embeddings and blocks are ``model``'s own modules.

    ``model``: a classifier made from GPT-2 (or the test model) whose trunk is frozen and unchanged; its last
    block may have been trained: the new classifier's last block and final norm are GPT-2's, read from the
    weights file. The new classifier lives on ``model``'s device. Raises :class:`helpers.FastEngineError` when
    ``model``'s trunk is trainable or differs from GPT-2's (build one with ``build_spam_classifier()`` then).
    """
    source = plain_model(model)
    model_size = getattr(source, "model_size", None) or model_size or settings.MODEL_SIZE
    trainable = [f"{name}.{p}" for name, module in _trunk_modules(source)
                 for p, param in module.named_parameters() if param.requires_grad]
    if trainable:
        raise FastEngineError(f"{len(trainable)} parameter tensors of the trunk are trainable (e.g. {trainable[:2]}): "
                              "sharing them would let one classifier's training change the other's. Share the "
                              "trunk of a classifier after the lecture's surgery, or use build_spam_classifier().")
    changed, top = _pretrained_top(source, model_size)
    if changed is not None:
        raise FastEngineError(f"this classifier's {changed} holds other weights than GPT-2's pretrained ones (trained "
                              "or changed), so a classifier sharing it would not be the lecture's starting point. "
                              "Use build_spam_classifier() instead.")
    device = source.tok_emb.weight.device
    with torch.device("meta"):  # a shell: every module with weights is replaced below
        sibling = GPTModel(source.cfg)
    sibling.tok_emb, sibling.pos_emb = source.tok_emb, source.pos_emb
    sibling.trf_blocks = nn.Sequential(*source.trf_blocks[:-1], top[0].to(device))
    sibling.final_norm = top[1].to(device)
    sibling.drop_emb = nn.Dropout(source.cfg["drop_rate"])
    sibling.is_test_model = getattr(source, "is_test_model", False)
    if not sibling.is_test_model:
        sibling.model_size = model_size
    num_classes = len(settings.CLASS_NAMES) if num_classes is None else num_classes
    prepare_for_classification(sibling, num_classes)  # freezes all (the shared trunk is frozen already), new head
    for own in (sibling.trf_blocks[-1], sibling.final_norm, sibling.out_head, sibling.drop_emb):
        own.eval()  # eval mode, as build_spam_classifier's; the shared modules keep the mode model gives them
    sibling.training = False
    return sibling
