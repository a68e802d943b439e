#!/usr/bin/env python3
"""Write a GPT-2 `model.safetensors` with RANDOM weights, in Hugging Face's format (maintainers' tool).

    python tools/random_gpt2_weights.py /tmp/random-gpt2     # -> /tmp/random-gpt2/gpt2/model.safetensors

For *timing* the workbook at real size where the real weights cannot be downloaded: speed does not
depend on the weights' values. Point WORKBOOK_GPT2_DIR at the folder. Every number such a run prints
(accuracy, generated text) is meaningless. Needs `transformers` (a test dependency).
"""
import sys
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

SIZES = {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024), "gpt2-large": (36, 20, 1280), "gpt2-xl": (48, 25, 1600)}

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    repo = sys.argv[2] if len(sys.argv) > 2 else "gpt2"
    layers, heads, dim = SIZES[repo]
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=layers, n_head=heads, n_embd=dim))
    model.save_pretrained(folder / repo)
    print(f"wrote {folder / repo / 'model.safetensors'} (random weights: for timing only)")
