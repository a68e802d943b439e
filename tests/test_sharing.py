"""One GPT-2 in memory: a second classifier shares the first one's frozen trunk, and GPT-2 loads without a copy."""
import pytest
import torch
from safetensors.torch import save_file

from helpers import (
    FastEngineError,
    WeightsError,
    build_spam_classifier,
    classifier_sharing_trunk,
    download_and_load_gpt2,
    prepare_for_classification,
)
from helpers.gpt import model_configs
from helpers.weights import HF_REPOS

TINY = "gpt2-tiny (test)"


@pytest.fixture
def tiny_gpt2(monkeypatch, tmp_path, hf_weights):
    """A GPT-2 size of its own ("gpt2-tiny (test)") whose random weights lie in WORKBOOK_GPT2_DIR, as GPT-2's would."""
    monkeypatch.delenv("WORKBOOK_TEST_MODEL", raising=False)
    monkeypatch.setitem(model_configs, TINY, {"emb_dim": 32, "n_layers": 3, "n_heads": 4})
    monkeypatch.setitem(HF_REPOS, TINY, "gpt2-tiny")
    (tmp_path / "gpt2-tiny").mkdir()
    save_file(hf_weights(n_layers=3, context_length=1024), str(tmp_path / "gpt2-tiny" / "model.safetensors"))
    monkeypatch.setenv("WORKBOOK_GPT2_DIR", str(tmp_path))
    return tmp_path / "gpt2-tiny" / "model.safetensors"


def same_model(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return (sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
            and [p.requires_grad for p in a.parameters()] == [p.requires_grad for p in b.parameters()])


def trunk_tensors(model):
    return [p for module in (model.tok_emb, model.pos_emb, *model.trf_blocks[:-1]) for p in module.parameters()]


@pytest.mark.parametrize("weights", ["gpt2 file", "test model"])
def test_the_sharing_classifier_is_build_spam_classifiers_and_holds_no_second_trunk(weights, request, monkeypatch):
    size = TINY if weights == "gpt2 file" else None
    if weights == "gpt2 file":
        request.getfixturevalue("tiny_gpt2")
    else:
        monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    first = build_spam_classifier(size or "gpt2-small (124M)", "cpu")
    second = classifier_sharing_trunk(first, size)
    assert same_model(second, build_spam_classifier(size or "gpt2-small (124M)", "cpu"))
    assert all(a is b for a, b in zip(trunk_tensors(first), trunk_tensors(second)))  # the same tensors
    assert second.trf_blocks[-1] is not first.trf_blocks[-1] and second.out_head is not first.out_head
    assert second.is_test_model == (weights == "test model")


def test_training_one_leaves_the_other_as_it_was(monkeypatch):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    first = build_spam_classifier("gpt2-small (124M)", "cpu")
    before = {k: v.clone() for k, v in first.state_dict().items()}
    second = classifier_sharing_trunk(first)
    optimizer = torch.optim.AdamW(second.parameters(), lr=0.1)
    second(torch.randint(0, 50257, (2, 7)))[:, -1].sum().backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in first.state_dict().items())
    assert all(p.grad is None for p in trunk_tensors(second))


def test_a_trained_top_is_not_copied_the_new_one_is_pretrained(tiny_gpt2):
    first = build_spam_classifier(TINY, "cpu")
    with torch.no_grad():
        first.trf_blocks[-1].att.W_query.weight.add_(1.0)  # "trained"
        first.final_norm.scale.mul_(2)
    second = classifier_sharing_trunk(first)
    assert same_model(second, build_spam_classifier(TINY, "cpu"))


def test_a_trainable_or_changed_trunk_is_refused(monkeypatch, tiny_gpt2):
    first = build_spam_classifier(TINY, "cpu")
    first.trf_blocks[0].norm1.scale.requires_grad = True
    with pytest.raises(FastEngineError, match="trunk are trainable"):
        classifier_sharing_trunk(first)
    first.trf_blocks[0].norm1.scale.requires_grad = False
    with torch.no_grad():
        first.trf_blocks[1].ff.layers[0].bias.add_(0.5)
    with pytest.raises(FastEngineError, match="trf_blocks.1 holds other weights than GPT-2's.*build_spam_classifier"):
        classifier_sharing_trunk(first)
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    test_model = build_spam_classifier("gpt2-small (124M)", "cpu")
    with torch.no_grad():
        test_model.tok_emb.weight[0, 0] += 1
    with pytest.raises(FastEngineError, match="tok_emb"):
        classifier_sharing_trunk(test_model)


def test_the_embedding_is_checked_part_by_part_to_its_last_row(tmp_path):
    """classifier_sharing_trunk checks the token embedding against the file 16 MB at a time: every part counts."""
    from helpers.weights import GPT2Tensors

    embedding = torch.randn(9000, 768)  # 27 MB: two parts
    save_file({"wte.weight": embedding, "wpe.weight": torch.randn(4, 768)}, str(tmp_path / "model.safetensors"))
    tensors = GPT2Tensors(tmp_path / "model.safetensors", "the test file")
    assert tensors.matches("wte.weight", embedding.clone())
    changed = embedding.clone()
    changed[-1, -1] += 1
    assert not tensors.matches("wte.weight", changed)
    assert not tensors.matches("wte.weight", embedding[:-1]) and not tensors.matches("wpe.weight", embedding[:4])


def test_the_pretrained_model_before_surgery_can_be_shared_too(tiny_gpt2):
    """Notebook 3 compares its hand-made surgery with prepare_for_classification without a second GPT-2."""
    gpt2 = download_and_load_gpt2(TINY)
    for param in gpt2.parameters():
        param.requires_grad = False
    reference = classifier_sharing_trunk(gpt2)
    assert same_model(reference, prepare_for_classification(download_and_load_gpt2(TINY)))


def test_loading_reads_one_tensor_at_a_time(tiny_gpt2, monkeypatch):
    """Each tensor is read from its own opening of the file, and checked before it is used."""
    from helpers import weights

    opened = []
    real = weights.safe_open

    def counting(*args, **kwargs):
        opened.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(weights, "safe_open", counting)
    download_and_load_gpt2(TINY)
    assert len(opened) == 1 + 2 + 3 * 12 + 2  # the header, the embeddings, 12 per block, the final norm
    data = bytearray(tiny_gpt2.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    data[-64:] = b"\xff" * 64  # a NaN in the file's last tensor
    tiny_gpt2.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="NaN or infinite"):
        download_and_load_gpt2(TINY)
    assert header < len(data) - 64


def test_a_checked_file_is_read_as_it_was_checked(tmp_path):
    """open_checked checks a file in one pass without holding it; reads afterwards see the bytes it checked, even
    when a new file is saved over the path meanwhile (as write_checked saves: atomically)."""
    from helpers.storage.files import CorruptFileError, open_checked, write_checked

    path = tmp_path / "weights.bin"
    write_checked(path, b"A" * 3_000_000)
    with open_checked(path) as file:
        write_checked(path, b"B" * 10)  # saved over it while it is open
        assert file.read() == b"A" * 3_000_000
    with open_checked(path) as file:
        assert file.read() == b"B" * 10
    path.write_bytes(b"C" * 10)  # edited without its checksum
    with pytest.raises(CorruptFileError, match="does not match its checksum"):
        open_checked(path)


def test_the_int8_copy_shares_the_float_tensors_and_leaves_the_model_as_it_was(tiny_classifier, tokenizer, messages):
    """Notebook 6's deployment table: the int8 model holds only its new int8 weights beside the float32 model."""
    from helpers import classify_texts, quantize_int8

    model = tiny_classifier(emb_dim=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    linears = [type(m) for m in model.modules()]
    quantized = quantize_int8(model)
    assert quantized.tok_emb.weight is model.tok_emb.weight and quantized.final_norm.scale is model.final_norm.scale
    assert [type(m) for m in model.modules()] == linears  # the float model keeps its Linear layers
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    labels, _ = classify_texts(messages, model, tokenizer, "cpu", max_length=40)
    quantized_labels, _ = classify_texts(messages, quantized, tokenizer, "cpu", max_length=40)
    assert (labels == quantized_labels).mean() >= 5 / 6
