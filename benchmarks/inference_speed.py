#!/usr/bin/env python3
"""How fast does the workbook classify messages, next to Hugging Face? (GPT-2 small config, CPU)

    python benchmarks/inference_speed.py [--quick] [--repeats 1]

Hugging Face's ``GPT2ForSequenceClassification`` (a test dependency) and the workbook's
classifier get the *same* random GPT-2-small weights (speed does not depend on their values)
and classify the 300 test messages, two ways:

* **padded**: every message padded to 120 tokens and read at the last position, as the lecture
  trains it; batches of 8 (the lecture's batch size). Hugging Face reads position 119 too.
* **own length**: every message read at its own last token, batches of 32. Hugging Face gets the
  messages in the given order, each batch padded to its longest message with an attention mask
  (what its pipeline does); the workbook groups messages of similar length (``classify_texts``).

Each in float32 and in bfloat16 autocast (where the CPU has native bf16). The messages are cut
into chunks of 100 and every contender classifies each chunk in turn (rotating who goes first),
so a change in the machine's load hits all of them alike. The padded contenders take their turns
32 messages at a time (a few seconds each; padded batches of 8 do not depend on each other), so a
busy minute on a shared machine falls on both sides of the padded ratio; the own-length ones take
the whole chunk, as ``classify_texts`` groups the messages it is given by length. ``--quick`` uses
the first 100 messages, twice. On a shared machine compare the CPU-time ratios too (time this process spent computing).
Its last line reads ``inference vs_hf padded=<x>x own_length=<y>x bf16=<z>x max_prob_diff=<d>``:
Hugging Face's float32 time divided by the workbook's (bf16: the workbook's own-length bf16 time
against Hugging Face's own-length float32), and the largest difference between the two float32
models' probabilities.
"""
import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import settings  # noqa: E402
from helpers import (  # noqa: E402
    GPTModel,
    bf16_native,
    classify_texts,
    get_gpt2_tokenizer,
    get_model_config,
    load_weights_into_gpt,
    prepare_for_classification,
    prepare_spam_splits,
)

MAX_LENGTH, PADDED_BATCH, OWN_BATCH, CHUNK = 120, 8, 32, 100
PADDED_TURN = 32  # padded reading: messages per turn within a chunk (4 batches of 8)


def build_models():
    """Hugging Face's classifier with random weights of settings.MODEL_SIZE's architecture (GPT-2 small), and
    the workbook's with the same ones."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(123)
    cfg = get_model_config(settings.MODEL_SIZE)
    config = GPT2Config(n_positions=cfg["context_length"], n_embd=cfg["emb_dim"], n_layer=cfg["n_layers"],
                        n_head=cfg["n_heads"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, num_labels=2,
                        pad_token_id=50256)
    hf = GPT2ForSequenceClassification(config).eval()
    ours = load_weights_into_gpt(GPTModel(cfg), hf.transformer.state_dict())
    ours = prepare_for_classification(ours).eval()
    with torch.no_grad():
        ours.out_head.weight.copy_(hf.score.weight)
        ours.out_head.bias.zero_()  # Hugging Face's score layer has no bias
    return hf, ours


def hf_classify(hf, tokenizer, texts, padded, precision):
    """Hugging Face's probabilities: padded to 120 (read at position 119) or each batch to its longest."""
    encoded = [tokenizer.encode(text, disallowed_special=())[:MAX_LENGTH] for text in texts]
    batch_size = PADDED_BATCH if padded else OWN_BATCH
    # padded: a pad id that never occurs, so Hugging Face reads the last position as the lecture does
    hf.config.pad_token_id = 50257 if padded else 50256
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    probabilities = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = MAX_LENGTH if padded else max(len(ids) for ids in chunk)
        ids = torch.tensor([row + [50256] * (width - len(row)) for row in chunk])
        mask = torch.ones_like(ids) if padded else torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk])
        with torch.no_grad(), amp:
            logits = hf(input_ids=ids, attention_mask=mask).logits.float()
        probabilities.append(torch.softmax(logits, dim=-1))
    return torch.cat(probabilities).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the first 100 test messages, twice")
    parser.add_argument("--repeats", type=int, default=None, help="passes over the messages (default 1; quick: 2)")
    args = parser.parse_args()
    args.repeats = args.repeats or (2 if args.quick else 1)
    texts = pd.read_csv(prepare_spam_splits()["test"])["Text"].tolist()[: CHUNK if args.quick else None]
    tokenizer = get_gpt2_tokenizer()
    hf, ours = build_models()
    bf16 = bf16_native("cpu")
    contenders = {
        ("workbook", "padded", "fp32"): lambda t: classify_texts(t, ours, tokenizer, "cpu", MAX_LENGTH, PADDED_BATCH)[1],
        ("hf", "padded", "fp32"): lambda t: hf_classify(hf, tokenizer, t, True, "fp32"),
        ("workbook", "own length", "fp32"): lambda t: classify_texts(t, ours, tokenizer, "cpu", None, OWN_BATCH)[1],
        ("hf", "own length", "fp32"): lambda t: hf_classify(hf, tokenizer, t, False, "fp32"),
    }
    if bf16:
        contenders |= {
            ("workbook", "padded", "bf16"): lambda t: classify_texts(t, ours, tokenizer, "cpu", MAX_LENGTH,
                                                                     PADDED_BATCH, precision="bf16")[1],
            ("workbook", "own length", "bf16"): lambda t: classify_texts(t, ours, tokenizer, "cpu", None, OWN_BATCH,
                                                                         precision="bf16")[1],
            ("hf", "own length", "bf16"): lambda t: hf_classify(hf, tokenizer, t, False, "bf16"),
        }
    print(f"GPT-2 small config (random weights), {len(texts)} test messages, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; bf16 {'native here' if bf16 else 'not native here: float32 only'}.")
    for run in contenders.values():  # warm-up
        run(texts[:4])
    seconds, cpu_seconds = dict.fromkeys(contenders, 0.0), dict.fromkeys(contenders, 0.0)
    probabilities = {key: [] for key in contenders}
    chunks = [texts[i:i + CHUNK] for i in range(0, len(texts), CHUNK)]
    keys = list(contenders)
    for repeat in range(args.repeats):
        for c, chunk in enumerate(chunks):
            turn = (repeat * len(chunks) + c) % len(keys)
            padded_keys = [key for key in keys[turn:] + keys[:turn] if key[1] == "padded"]  # rotate who goes first
            turns = [(key, chunk[i:i + PADDED_TURN]) for i in range(0, len(chunk), PADDED_TURN) for key in padded_keys]
            turns += [(key, chunk) for key in keys[turn:] + keys[:turn] if key[1] != "padded"]
            for key, messages in turns:
                start, cpu_start = time.perf_counter(), time.process_time()
                result = contenders[key](messages)
                seconds[key] += time.perf_counter() - start
                cpu_seconds[key] += time.process_time() - cpu_start
                if repeat == 0:
                    probabilities[key].append(result)
        print(f"  pass {repeat + 1}/{args.repeats} done")
    probabilities = {key: np.concatenate(parts) for key, parts in probabilities.items()}

    n = len(texts) * args.repeats
    print(f"\n{'reading':<12}{'precision':<11}{'workbook msg/s':>16}{'HF msg/s':>10}{'ratio':>8}{'CPU-time ratio':>16}"
          f"{'max prob diff':>15}{'same labels':>13}")
    for reading in ("padded", "own length"):
        for precision in ("fp32", "bf16"):
            mine, theirs = ("workbook", reading, precision), ("hf", reading, precision)
            if mine not in seconds:
                continue
            reference = probabilities[("hf", reading, "fp32")]
            diff = np.abs(probabilities[mine] - reference).max()
            same = (probabilities[mine].argmax(1) == reference.argmax(1)).mean()
            hf_rate = f"{n / seconds[theirs]:>10.2f}" if theirs in seconds else f"{'-':>10}"
            ratio = seconds.get(theirs, seconds[("hf", reading, "fp32")]) / seconds[mine]
            cpu_ratio = cpu_seconds.get(theirs, cpu_seconds[("hf", reading, "fp32")]) / cpu_seconds[mine]
            print(f"{reading:<12}{precision:<11}{n / seconds[mine]:>16.2f}{hf_rate}{ratio:>7.2f}x{cpu_ratio:>15.2f}x"
                  f"{diff:>15.2e}{same:>12.1%}")
    print("(ratio: Hugging Face's time / the workbook's, in the same precision, or against float32 where Hugging "
          "Face has no bf16 row;\n probability differences and label agreement: against Hugging Face in float32)")
    padded = seconds[("hf", "padded", "fp32")] / seconds[("workbook", "padded", "fp32")]
    own = seconds[("hf", "own length", "fp32")] / seconds[("workbook", "own length", "fp32")]
    bf16_ratio = (seconds[("hf", "own length", "fp32")] / seconds[("workbook", "own length", "bf16")]
                  if bf16 else float("nan"))
    max_diff = max(np.abs(probabilities[("workbook", r, "fp32")] - probabilities[("hf", r, "fp32")]).max()
                   for r in ("padded", "own length"))
    print(f"inference vs_hf padded={padded:.2f}x own_length={own:.2f}x bf16={bf16_ratio:.2f}x "
          f"max_prob_diff={max_diff:.1e}")


if __name__ == "__main__":
    main()
