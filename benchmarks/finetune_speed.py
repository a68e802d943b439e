#!/usr/bin/env python3
"""How much faster is the fast engine than the lecture loop, and than Hugging Face? (GPT-2 small config, CPU)

    python benchmarks/finetune_speed.py [--steps 20] [--quick] [--optimizer fused|default]

GPT-2 small with *random* weights (speed does not depend on the weights' values), the real SMS
splits and the lecture's hyperparameters. In one process it measures:

* the lecture loop: time per training step, and per evaluation batch;
* exact mode: the one-time trunk pass (timed per message; every message is padded to 120
  tokens, so the cost per message is the same for all), then time per step and per evaluation batch;
* flexible mode: the whole one-time trunk pass (real tokens only), then time per step and per
  evaluation batch;
* Hugging Face, the peer a user would otherwise pick: ``transformers.GPT2ForSequenceClassification``
  built offline from a ``GPT2Config`` with GPT-2 small's architecture (its default attention, dropout
  off as in the lecture's config) and the workbook model's random weights copied in (checked: its
  logits at the last real token match the workbook's), frozen as the lecture freezes it (trainable only
  the last block ``transformer.h[-1]``, the final LayerNorm ``transformer.ln_f`` and the 2-class head
  ``score``, which has no bias). With ``pad_token_id=50256`` it reads each message at its last real
  token; like the lecture's batches it gets no attention mask (the padding follows the message and
  attention is causal, so a mask would not change what is read; Hugging Face warns about it once). It
  trains on the same batches with the same optimizer and step (zero_grad, cross-entropy of its 2-class
  logits, backward, step); its time per step and per evaluation batch are timed as the lecture loop's.

The trunk pass covers what a full run reads: every training message and the validation
messages of the first ``eval_iter`` batches (the validation loader is not shuffled, so the
loop's evaluations read only those). Every mode, Hugging Face included, uses the same optimizer:
AdamW, lr 5e-5, weight decay 0.1, by default in PyTorch's fused implementation (the same algorithm in one kernel; on a
CPU it updates the 7M trainable parameters ~5x faster than the default for-loop, which matters
once a step is fast). ``--optimizer default`` measures with the default implementation.

Every mode's trunk pass, training steps and evaluation batches are measured in rounds, the modes
taking turns (rotating who goes first), so a change in the machine's load hits them all alike. The
lecture loop and Hugging Face, which have no trunk pass, time a few steps in each round of the trunk
passes as well: their time per step is sampled over the same minutes as the fast modes' whole runs (on a
shared machine a busy stretch during the trunk passes alone would otherwise slow one side of the ratio
only); Hugging Face times as many steps as the lecture loop.
Each round of steps (and of evaluation batches) starts with one untimed warm-up per mode: the mode
before it has just evicted its weights from the CPU's caches, which a real run, where steps follow
each other, never does. A fast mode times five times as many steps as the lecture loop (cycling
through the same batches): its steps take milliseconds, and twenty of them would be at the mercy of
one brief burst of another process.

Where the CPU computes bfloat16 natively (AVX512-BF16 or AMX, see ``helpers.fast.precision``) it
also measures the lecture loop in bf16 autocast and flexible mode with ``precision="bf16"``
(flexible mode's default there): its trunk pass in bf16, its steps in float32, as
``train_classifier_fast`` runs them.

From these it projects the lecture's full run: 5 epochs × 130 steps, an evaluation of 5 + 5
batches every 50 steps (13 times) and after each epoch (5 times). Exact mode trains on the same
batches, in the same order, as the lecture loop: a fresh copy replays the lecture loop's steps, and
the largest absolute difference between their parameters is reported. The line before the last
gives each fast mode's speedup over Hugging Face (``vs Hugging Face ...: exact=<x>x flexible=<y>x
flexible_bf16=<z>x``). The last line reads
``speedup exact=<x>x flexible=<y>x max_abs_diff=<d> flexible_bf16=<z>x hf=<h>x``, every speedup against
the float32 lecture loop (``flexible_bf16=nanx`` where bf16 is not native; ``hf``: the lecture loop's
projected time / Hugging Face's, below 1 where Hugging Face is slower). ``--quick`` times 8 steps
(``--steps`` still wins when given: ``--quick --steps 4`` is the shortest run).
"""
import argparse
import copy
import itertools
import os
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import settings  # noqa: E402
from helpers import (  # noqa: E402
    END_OF_TEXT_ID,
    CachedTop,
    GPTModel,
    TrunkCache,
    bf16_native,
    calc_loss_batch,
    get_model_config,
    get_spam_dataloaders,
    prepare_for_classification,
)
from helpers.classroom.performance import project_training_seconds, seconds_per_eval_batch  # noqa: E402
from helpers.fast.precision import autocast  # noqa: E402

EPOCHS, EVAL_ITER = settings.NUM_EPOCHS, settings.EVAL_ITER
FAST_STEPS = 5  # a fast mode times this many times as many steps per round as the lecture loop
TRUNK_ROUNDS = 8  # the trunk passes are measured in this many rounds, modes taking turns
TRUNK_ROUND_STEPS = 2  # lecture-loop steps timed in each round of the trunk passes (see measure)


class PeakMemory:
    """Peak resident memory of this process while the block runs (sampled), in MB."""

    def __enter__(self):
        self.peak, self._running = self._rss(), True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    @staticmethod
    def _rss():
        try:
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
        except OSError:
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_loaders():
    return get_spam_dataloaders(seed=123)


def training_batches(steps):
    """The first ``steps`` training batches in the book's order, the same list for every mode.

    The training loader draws each pass's shuffle from PyTorch's global generator (as the book's
    does), so every mode must read it from the same seed, not wherever the other modes left it.
    """
    torch.manual_seed(123)  # where the book seeds before training
    loader, batches = fresh_loaders()[0], []
    while len(batches) < steps:  # past one epoch: the next pass, reshuffled, as the lecture loop goes on
        batches += [batch for _, batch in zip(range(steps - len(batches)), loader)]
    return batches


def timed_steps(steps):
    """``(rounds, lecture-loop steps timed per round)`` for ``--steps``: rounds of 4, at least one."""
    return max(1, steps // 4), 4


def optimizer_for(model, implementation):
    options = {"fused": True} if implementation == "fused" else {}
    return torch.optim.AdamW(model.parameters(), lr=settings.LEARNING_RATE, weight_decay=settings.WEIGHT_DECAY, **options)


HF = "Hugging Face"  # the peer's row: transformers' GPT2ForSequenceClassification


def hf_state_dict(model):
    """The workbook model's trunk as Hugging Face's ``GPT2Model`` names and lays it out (the inverse of
    ``load_weights_into_gpt``: ``Conv1D`` weights stored as [in, out], query/key/value fused in ``c_attn``)."""
    state = {"wte.weight": model.tok_emb.weight, "wpe.weight": model.pos_emb.weight,
             "ln_f.weight": model.final_norm.scale, "ln_f.bias": model.final_norm.shift}
    for b, block in enumerate(model.trf_blocks):
        att, ff, p = block.att, block.ff.layers, f"h.{b}."
        qkv = (att.W_query, att.W_key, att.W_value)
        state |= {
            p + "attn.c_attn.weight": torch.cat([layer.weight.T for layer in qkv], dim=-1),
            p + "attn.c_attn.bias": torch.cat([layer.bias if layer.bias is not None
                                               else torch.zeros(layer.out_features) for layer in qkv]),
            p + "attn.c_proj.weight": att.out_proj.weight.T, p + "attn.c_proj.bias": att.out_proj.bias,
            p + "mlp.c_fc.weight": ff[0].weight.T, p + "mlp.c_fc.bias": ff[0].bias,
            p + "mlp.c_proj.weight": ff[2].weight.T, p + "mlp.c_proj.bias": ff[2].bias,
            p + "ln_1.weight": block.norm1.scale, p + "ln_1.bias": block.norm1.shift,
            p + "ln_2.weight": block.norm2.scale, p + "ln_2.bias": block.norm2.shift,
        }
    return {name: value.detach().contiguous() for name, value in state.items()}


def hf_classifier(model):
    """Hugging Face's ``GPT2ForSequenceClassification`` with GPT-2 small's architecture and ``model``'s
    (random) weights, frozen as the lecture freezes: trainable only the last block, the final LayerNorm
    and the 2-class head ``score`` (Hugging Face's has no bias; it gets the workbook head's weight).

    ``pad_token_id=50256``: it reads each message at its last real token (the rightmost one that is not
    padding). The lecture's batches carry no attention mask; the padding follows the message and
    attention is causal, so a mask would not change what is read there.
    """
    from transformers import GPT2Config, GPT2ForSequenceClassification

    cfg = model.cfg
    config = GPT2Config(vocab_size=cfg["vocab_size"], n_positions=cfg["context_length"], n_embd=cfg["emb_dim"],
                        n_layer=cfg["n_layers"], n_head=cfg["n_heads"], resid_pdrop=cfg["drop_rate"],
                        embd_pdrop=cfg["drop_rate"], attn_pdrop=cfg["drop_rate"], layer_norm_epsilon=1e-5,
                        activation_function="gelu_new", num_labels=model.out_head.out_features,
                        pad_token_id=END_OF_TEXT_ID)
    hf = GPT2ForSequenceClassification(config)
    loaded = hf.transformer.load_state_dict(hf_state_dict(model), strict=False)
    parameters = dict(hf.transformer.named_parameters())
    missing = [name for name in loaded.missing_keys if name in parameters]
    if missing or loaded.unexpected_keys:
        raise RuntimeError(f"copying the weights into Hugging Face's GPT-2: missing {missing}, "
                           f"unexpected {loaded.unexpected_keys}")
    with torch.no_grad():
        hf.score.weight.copy_(model.out_head.weight)
    for param in hf.parameters():
        param.requires_grad = False
    for module in (hf.transformer.h[-1], hf.transformer.ln_f, hf.score):
        for param in module.parameters():
            param.requires_grad = True
    return hf


def hf_version():
    import transformers

    return transformers.__version__


def trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class LastTokenLogits(torch.nn.Module):
    """Hugging Face's classifier behind the lecture's interface: ``model(ids)[:, -1, :]`` is its logits
    (``[batch, 2]``, read at each message's last real token), so ``calc_loss_batch`` takes the cross-entropy
    of exactly those, and the steps and evaluation batches are timed by the same code as every mode's."""

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids):
        return self.hf(input_ids=input_ids).logits[:, None, :]


def hf_matches(model, hf, batch):
    """Largest difference between Hugging Face's logits and the workbook model's at the last real token
    (without the workbook head's bias, which Hugging Face's head lacks): a check that the copy is right."""
    model.eval(), hf.eval()
    last = (batch != END_OF_TEXT_ID).int().cumsum(1).argmax(1)  # the rightmost real token
    with torch.no_grad():
        ours = model(batch)[torch.arange(len(batch)), last] - model.out_head.bias
        theirs = hf(input_ids=batch).logits
    return (ours - theirs).abs().max().item()


def step_timer(model, optimizer, precision, batches):
    """A function ``run(k)``: one untimed warm-up step, then the time of ``k`` more steps, on ``batches``
    in order (from the start again once they run out).

    The warm-up step matters when the modes take turns: the mode before has just filled the CPU's
    caches with its own weights, so a fast mode's first step would pay for reloading its ~28 MB of
    weights, gradients and moments (up to twice a warm step's time). In a real run steps follow each
    other, warm. Every mode gets the same warm-up, and all of them train on the same batches.
    """
    batches = itertools.cycle(batches)

    def step():
        input_batch, target_batch = next(batches)
        optimizer.zero_grad()
        with autocast(precision, "cpu"):
            loss = calc_loss_batch(input_batch, target_batch, model, "cpu")
        loss.backward()
        optimizer.step()

    def run(k, warm_up=True):
        model.train()
        if warm_up:
            step()  # untimed
        start = time.perf_counter()
        for _ in range(k):
            step()
        return time.perf_counter() - start
    return run


def eval_timer(view, val_loader, precision):
    """A function ``run(r)``: one untimed evaluation batch (warm-up, as for the steps), then the time of two."""
    def run(_):
        seconds_per_eval_batch(view, val_loader, batches=1, precision=precision)
        return 2 * seconds_per_eval_batch(view, val_loader, batches=2, precision=precision)
    return run


def interleaved(jobs, rounds):
    """Run every job once per round, rotating who goes first; total seconds per job.

    On a shared machine the load changes from minute to minute: interleaving spreads it evenly
    over the modes, so their ratios stay fair.
    """
    names, total = list(jobs), dict.fromkeys(jobs, 0.0)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            total[name] += jobs[name](r)
    return total


def measure(base, hf, args, bf16, read_by_the_loop, val_loader):
    """One-time trunk passes, seconds per step and per evaluation batch of every mode, measured interleaved."""
    models = {"lecture": copy.deepcopy(base), "exact": copy.deepcopy(base), "flexible": copy.deepcopy(base)}
    if bf16:
        models |= {"lecture bf16": copy.deepcopy(base), "flexible bf16": copy.deepcopy(base)}
    models[HF] = LastTokenLogits(hf)  # float32, no trunk pass: a full forward every step, as the lecture loop
    # the modes without a trunk pass: the lecture loop (in each precision) and Hugging Face
    loop_modes = [name for name in models if name.startswith("lecture") or name == HF]
    precision_of = {name: "bf16" if name.endswith("bf16") else "fp32" for name in models}
    # the fast engine runs its trunk pass in the mode's precision and its steps in float32
    # (train_classifier_fast: at 8 rows a step reads weights, bf16 would add casts)
    step_precision = {name: precision_of[name] if name.startswith("lecture") else "fp32" for name in models}

    # ---- one-time trunk passes: exact mode caches only what these steps and evaluations read (cost per
    # message: every message is padded to 120); flexible mode the whole pass (real tokens only)
    n_rounds, per_round = timed_steps(args.steps)
    batches = training_batches(n_rounds * (per_round + 1))  # each round: one warm-up step, then per_round
    # a fast step takes milliseconds: a fast mode times FAST_STEPS times as many per round (cycling
    # through the same batches), so that a neighbour's brief burst on a shared machine, which costs
    # the lecture loop's 20 steps a few percent, does not decide its time
    timed_per_round = {name: per_round * (1 if name in loop_modes else FAST_STEPS) for name in models}
    needed = torch.cat([x for x, _ in batches]
                       + [val_loader.dataset[i][0][None] for i in range(3 * val_loader.batch_size)])
    caches = {"exact": TrunkCache(models["exact"], mode="exact")}
    caches |= {name: TrunkCache(models[name], mode="flexible", precision=precision_of[name])
               for name in models if name.startswith("flexible")}
    rows = {"exact": torch.unique(needed, dim=0)} | {name: read_by_the_loop for name in caches if name != "exact"}
    rounds = TRUNK_ROUNDS
    # each round takes the next eighth of the messages in order of length, so its batches group
    # messages of similar length as one pass over all of them does
    parts = {name: torch.tensor_split(r[torch.argsort((r != caches[name].pad_token_id).sum(1), stable=True)], rounds)
             for name, r in rows.items()}

    def trunk_job(name):
        def job(r):
            part = parts[name][r]
            start = time.perf_counter()
            caches[name].add(part)
            return time.perf_counter() - start
        return job
    # the lecture loop (and Hugging Face) has no trunk pass, but it takes its turn in these rounds too,
    # timing a few steps: its time per step is then sampled over the same minutes as the fast modes' trunk
    # passes and steps, so a busy (or quiet) stretch of the machine during the trunk passes hits both sides
    # of the ratio
    steppers = {name: step_timer(models[name], optimizer_for(models[name], args.optimizer), step_precision[name],
                                 batches)
                for name in loop_modes}
    for name in loop_modes:
        steppers[name](0)  # an untimed first step (AdamW allocates its moments)
    print(f"Trunk passes ({', '.join(caches)}), interleaved in {rounds} rounds with {TRUNK_ROUND_STEPS} steps "
          f"of each mode without one ({', '.join(loop_modes)})...")
    trunk = interleaved({name: trunk_job(name) for name in caches}
                        | {name: (lambda run: lambda r: run(TRUNK_ROUND_STEPS, warm_up=False))(steppers[name])
                           for name in loop_modes}, rounds)
    one_time = {name: 0.0 for name in models}
    one_time["exact"] = trunk["exact"] / len(caches["exact"]) * len(read_by_the_loop)
    one_time |= {name: trunk[name] for name in caches if name != "exact"}

    # ---- steps and evaluation batches, interleaved
    views = {name: CachedTop(models[name], caches[name]) if name in caches else models[name] for name in models}
    steppers |= {name: step_timer(views[name], optimizer_for(models[name], args.optimizer), step_precision[name],
                                  batches)
                 for name in models if name not in steppers}
    print(f"Training steps ({', '.join(models)}), interleaved in {n_rounds} rounds, each mode taking a warm-up "
          f"step, then {per_round} timed steps (the fast modes {per_round * FAST_STEPS})...")
    steps = interleaved({name: (lambda run, k: lambda r: run(k))(run, timed_per_round[name])
                         for name, run in steppers.items()}, n_rounds)
    eval_rounds = 3
    evals = interleaved({name: eval_timer(views[name], val_loader, step_precision[name]) for name in models},
                        eval_rounds)
    timed = {name: n_rounds * timed_per_round[name] for name in models}
    for name in loop_modes:  # their steps timed during the trunk passes count too
        steps[name] += trunk[name]
        timed[name] += rounds * TRUNK_ROUND_STEPS
    results = {name: {"one_time": one_time[name], "step": steps[name] / timed[name],
                      "eval": evals[name] / (2 * eval_rounds)}
               for name in models}
    # exact mode replays the lecture loop's steps (the same batches, in the same order) on a fresh copy
    trained = 1 + rounds * TRUNK_ROUND_STEPS + n_rounds * (per_round + 1)  # every step the lecture loop took
    exact = copy.deepcopy(base)
    replay = step_timer(CachedTop(exact, caches["exact"]), optimizer_for(exact, args.optimizer), "fp32", batches)
    replay(trained - 1)  # its warm-up step and these
    max_abs_diff = max((a - b).abs().max().item() for a, b in zip(models["lecture"].parameters(), exact.parameters()))
    full_cache_mb = len(read_by_the_loop) * caches["exact"].activations[0].numel() * 4 / 1e6
    return results, max_abs_diff, full_cache_mb, trained


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps the lecture loop times, in rounds of 4 "
                        "(default 20, --quick 8; fast modes 5x as many)")
    parser.add_argument("--optimizer", choices=("fused", "default"), default="fused",
                        help="AdamW implementation used by every mode (default: fused)")
    parser.add_argument("--quick", action="store_true",
                        help="--steps 8 unless --steps is given (fast modes time 5x as many)")
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 8 if args.quick else 20
    bf16 = bf16_native("cpu")
    rounds, per_round = timed_steps(args.steps)
    lecture_steps = rounds * per_round
    torch.manual_seed(123)
    base = prepare_for_classification(GPTModel(get_model_config(settings.MODEL_SIZE)))
    train_loader, val_loader, _ = fresh_loaders()
    read_by_the_loop = torch.unique(torch.stack(
        [train_loader.dataset[i][0] for i in range(len(train_loader.dataset))]
        + [val_loader.dataset[i][0] for i in range(EVAL_ITER * val_loader.batch_size)]), dim=0)
    n_messages = len(read_by_the_loop)
    print(f"GPT-2 small config (random weights), {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"a full run reads {n_messages} distinct messages; timing {lecture_steps} steps per mode "
          f"({lecture_steps * FAST_STEPS} for fast modes; the lecture loop and {HF} another "
          f"{TRUNK_ROUNDS * TRUNK_ROUND_STEPS} during the trunk passes); "
          f"AdamW ({args.optimizer}); bf16 {'native here' if bf16 else 'not native here: float32 only'}.")
    hf = hf_classifier(base)
    check = hf_matches(base, hf, next(iter(val_loader))[0])
    attention = getattr(hf.config, "_attn_implementation", None) or "default"
    print(f"{HF}: transformers {hf_version()} GPT2ForSequenceClassification "
          f"({attention} attention), the same random weights; {trainable(hf):,} trainable "
          f"parameters (the workbook's {trainable(base):,}: its head has a bias); logits at the last real token "
          f"differ from the workbook model's by at most {check:.1e}.\n")
    with PeakMemory() as memory:
        results, max_abs_diff, full_cache_mb, trained = measure(base, hf, args, bf16, read_by_the_loop, val_loader)

    print(f"\n{'mode':<15}{'trunk pass':>12}{'s/step':>9}{'s/eval batch':>14}{'per epoch':>11}"
          f"{'5 epochs (projected)':>22}")
    totals = {}
    for mode, r in results.items():
        loop = project_training_seconds(r["step"], r["eval"], steps_per_epoch=len(train_loader))
        totals[mode] = r["one_time"] + loop
        print(f"{mode:<15}{r['one_time']:>10.1f} s{r['step']:>9.3f}{r['eval']:>14.3f}{loop / EPOCHS:>9.1f} s"
              f"{totals[mode] / 60:>18.1f} min")
    print(f"\nexact mode's full trunk cache for {n_messages} messages: {full_cache_mb:.0f} MB (float32); "
          f"peak memory of this process: {memory.peak:.0f} MB")
    print(f"exact vs lecture after the same {trained} steps: largest parameter difference {max_abs_diff:.2e}")
    fast_modes = ("exact", "flexible", "flexible bf16")
    vs_hf = {mode: totals[HF] / totals.get(mode, float("nan")) for mode in fast_modes}
    print(f"vs {HF} (its projected time / each fast mode's): exact={vs_hf['exact']:.1f}x "
          f"flexible={vs_hf['flexible']:.1f}x flexible_bf16={vs_hf['flexible bf16']:.1f}x")
    speedup = {mode: totals["lecture"] / totals.get(mode, float("nan")) for mode in fast_modes + (HF,)}
    print(f"speedup exact={speedup['exact']:.1f}x flexible={speedup['flexible']:.1f}x max_abs_diff={max_abs_diff:.2e} "
          f"flexible_bf16={speedup['flexible bf16']:.1f}x hf={speedup[HF]:.2f}x")


if __name__ == "__main__":
    main()
