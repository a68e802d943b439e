"""GPTModel and the weights loader, proven against Hugging Face transformers (test-only dependency)."""
import struct

import pytest
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

from helpers import (
    GPTModel,
    WeightsError,
    build_spam_classifier,
    classifier_parameter_counts,
    count_parameters,
    download_and_load_gpt2,
    generate,
    generate_text_simple,
    get_device,
    get_gpt2_tokenizer,
    get_model_config,
    load_weights_into_gpt,
    prepare_for_classification,
    set_seed,
)

SMS = ("Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121 to receive entry "
       "question(std txt rate)T&C's apply 08452810075over18's")


def hf_model(tmp_path, n_layer, n_head, n_embd, n_positions=1024, seed=0):
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_positions=n_positions,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(tmp_path)
    cfg = {"vocab_size": 50257, "context_length": n_positions, "emb_dim": n_embd, "n_heads": n_head,
           "n_layers": n_layer, "drop_rate": 0.0, "qkv_bias": True}
    return model, cfg, tmp_path / "model.safetensors"


def sms_batch():
    tokenizer = get_gpt2_tokenizer()
    ids = tokenizer.encode(SMS)
    short = tokenizer.encode("Ok lar... Joking wif u oni...")
    return torch.tensor([ids[:40], (short + [50256] * 40)[:40]])


@pytest.mark.parametrize("shape", [(3, 4, 96), pytest.param((12, 12, 768), marks=pytest.mark.slow)],
                         ids=["odd-3x4x96", "gpt2-small"])
def test_logits_and_generation_match_transformers(tmp_path, shape):
    hf, cfg, path = hf_model(tmp_path, *shape)
    ours = load_weights_into_gpt(GPTModel(cfg), path).eval()
    x = sms_batch()
    with torch.no_grad():
        assert torch.allclose(ours(x), hf(x).logits, atol=1e-4)
    prompt = x[:1, :12]
    hf_tokens = hf.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=50256)
    assert torch.equal(generate_text_simple(ours, prompt, max_new_tokens=8, context_size=cfg["context_length"]), hf_tokens)


def test_flash_attention_and_the_written_out_math_agree():
    torch.manual_seed(0)
    model = GPTModel({**get_model_config("gpt2-small (124M)"), "n_layers": 2, "emb_dim": 48, "n_heads": 4}).eval()
    x = torch.randint(0, 50257, (3, 17))
    with torch.no_grad():
        flash = model(x)
        model.trf_blocks[0].att.flash = model.trf_blocks[1].att.flash = False
        written_out = model(x)
    assert torch.allclose(flash, written_out, atol=1e-5)


def test_layer_norm_is_the_standard_layer_norm():
    from helpers import LayerNorm

    torch.manual_seed(0)
    norm = LayerNorm(16)
    with torch.no_grad():
        norm.scale.normal_(), norm.shift.normal_()
    x = torch.randn(4, 5, 16) * 3 + 1
    expected = torch.nn.functional.layer_norm(x, (16,), norm.scale, norm.shift, eps=1e-5)
    assert torch.allclose(norm(x), expected, atol=1e-5)


def test_generate_refuses_a_classifier():
    torch.manual_seed(0)
    model = prepare_for_classification(GPTModel({**get_model_config("gpt2-small (124M)"), "n_layers": 1,
                                                 "emb_dim": 16, "n_heads": 2}))
    with pytest.raises(ValueError, match="classifier and cannot generate text.*download_and_load_gpt2"):
        generate(model, get_gpt2_tokenizer(), "Every effort moves you", max_new_tokens=3)


def test_head_is_tied_and_counts_match_transformers(tmp_path):
    hf, cfg, path = hf_model(tmp_path, 2, 4, 96)
    ours = load_weights_into_gpt(GPTModel(cfg), path)
    assert ours.out_head.weight is ours.tok_emb.weight
    assert count_parameters(ours)[1] == sum(p.numel() for p in hf.parameters())


def test_gpt2_small_counts_from_the_architecture():
    d, v, ctx, layers = 768, 50257, 1024, 12
    block = 2 * 2 * d + 3 * (d * d + d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    pretrained = v * d + ctx * d + layers * block + 2 * d
    counts = classifier_parameter_counts("gpt2-small (124M)")
    assert counts == {"pretrained_total": pretrained, "classifier_total": pretrained + 2 * d + 2,
                      "classifier_trainable": block + 2 * d + 2 * d + 2}
    assert pretrained == 124_439_808  # the "124M" in GPT-2 small's name


def test_surgery_freezes_all_but_the_top():
    torch.manual_seed(0)
    model = prepare_for_classification(GPTModel({**get_model_config("gpt2-small (124M)"), "n_layers": 3,
                                                 "emb_dim": 48, "n_heads": 4}))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("trf_blocks.2.", "final_norm.", "out_head.")) for n in trainable)
    assert {"out_head.weight", "out_head.bias", "final_norm.scale"} <= trainable
    assert model(torch.randint(0, 50257, (1, 4))).shape == (1, 4, 2)
    # the head is seeded: the same surgery twice gives the same head
    again = prepare_for_classification(GPTModel(model.cfg))
    assert torch.equal(again.out_head.weight, model.out_head.weight)


def test_wrong_size_file_names_the_tensor(tmp_path):
    _, cfg, path = hf_model(tmp_path, 2, 4, 96)
    with pytest.raises(WeightsError, match=r"'wte.weight' has shape \[50257, 96\].*needs \[50257, 128\]"):
        load_weights_into_gpt(GPTModel({**cfg, "emb_dim": 128}), path)
    with pytest.raises(WeightsError, match="lacks .* tensor.*h.2"):
        load_weights_into_gpt(GPTModel({**cfg, "n_layers": 3}), path)


def test_truncated_or_corrupted_file_names_the_file(tmp_path):
    _, cfg, path = hf_model(tmp_path, 1, 4, 96)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated.safetensors.*truncated or corrupted"):
        load_weights_into_gpt(GPTModel(cfg), truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 10**12) + b"not a header")
    with pytest.raises(WeightsError, match="garbage.safetensors"):
        load_weights_into_gpt(GPTModel(cfg), garbage)


def test_mapping_source_is_accepted(tmp_path):
    hf, cfg, _ = hf_model(tmp_path, 1, 4, 96)
    ours = load_weights_into_gpt(GPTModel(cfg), hf.state_dict())
    x = sms_batch()
    with torch.no_grad():
        assert torch.allclose(ours(x), hf(x).logits, atol=1e-4)


def test_test_model_is_announced(monkeypatch, capsys):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    model = download_and_load_gpt2("gpt2-small (124M)")
    out = capsys.readouterr().out
    assert "TEST MODEL" in out and "RANDOM weights" in out and "NOT the lecture's" in out
    assert model.is_test_model and model.cfg["context_length"] >= 120
    again = build_spam_classifier(device="cpu")  # once per notebook: the banner is not printed again
    assert again.is_test_model and "TEST MODEL" not in capsys.readouterr().out


def test_no_silent_fallback_without_weights(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("WORKBOOK_GPT2_DIR", raising=False)
    from helpers import weights

    monkeypatch.setattr(weights, "HF_URLS", ("http://127.0.0.1:9/{repo}.safetensors",))  # nothing listens there
    with pytest.raises(WeightsError) as info:
        download_and_load_gpt2("gpt2-small (124M)")
    message = str(info.value)
    assert "openai-community/gpt2/resolve/main/model.safetensors" in message and "WORKBOOK_GPT2_DIR" in message
    assert "`%env WORKBOOK_TEST_MODEL=1` in a cell" in message and "then run this cell again" in message
    first, *_, last = message.splitlines()  # what is wrong first, then what to do; the failed tries last, once
    assert "not on this machine" in first and last.startswith("(What failed:") and "try 1/" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chain of tracebacks
    assert "TEST MODEL" not in capsys.readouterr().out
    assert not list(tmp_path.rglob("*.safetensors")) and not list(tmp_path.rglob("*.part"))


@pytest.mark.slow
def test_prestaged_weights_are_used(monkeypatch, tmp_path):
    hf, cfg, path = hf_model(tmp_path / "hf", 12, 12, 768)
    staged = tmp_path / "usb" / "gpt2"
    staged.mkdir(parents=True)
    (staged / "model.safetensors").write_bytes(path.read_bytes())
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "")
    monkeypatch.setenv("WORKBOOK_GPT2_DIR", str(tmp_path / "usb"))
    model = download_and_load_gpt2("gpt2-small (124M)")
    assert model.is_test_model is False
    x = sms_batch()
    with torch.no_grad():
        assert torch.allclose(model(x), hf(x).logits, atol=1e-4)


def test_unknown_size_lists_the_choices():
    with pytest.raises(ValueError, match="gpt2-small \\(124M\\)"):
        get_model_config("gpt2-tiny")


def test_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch, "__version__", "2.8.0")
    assert get_device().type == "cpu"  # MPS computed wrong losses before torch 2.9
    monkeypatch.setattr(torch, "__version__", "2.9.1")
    assert get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cuda"


def test_set_seed_makes_runs_repeatable():
    set_seed(7)
    a = (torch.rand(3), __import__("random").random(), __import__("numpy").random.rand())
    set_seed(7)
    b = (torch.rand(3), __import__("random").random(), __import__("numpy").random.rand())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]



# --------------------------------------------------------------------------- 9. corrupted weights
def test_weights_corrupted_in_place_are_refused_naming_the_tensor(tmp_path, hf_weights, tiny_gpt):
    path = tmp_path / "model.safetensors"
    save_file(hf_weights(), str(path))
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    middle = header + (len(data) - header) // 2
    data[middle:middle + 100] = b"\xff" * 100  # 0xFFFFFFFF is a NaN in float32
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"tensor '.*' holds NaN or infinite values"):
        load_weights_into_gpt(tiny_gpt(), path)


def test_integer_and_bool_weights_are_refused_naming_the_tensor(hf_weights, tiny_gpt):
    width = tiny_gpt().cfg["emb_dim"]
    tensors = hf_weights()
    tensors["h.1.ln_2.bias"] = torch.zeros(width, dtype=torch.int64)
    with pytest.raises(WeightsError, match="'h.1.ln_2.bias' holds int64 values"):
        load_weights_into_gpt(tiny_gpt(), tensors)
    tensors = hf_weights()
    tensors["ln_f.weight"] = torch.ones(width, dtype=torch.bool)
    with pytest.raises(WeightsError, match="'ln_f.weight' holds bool values"):
        load_weights_into_gpt(tiny_gpt(), tensors)
