"""How long a training run will take on this machine, measured before it starts (notebook 7's runs)."""
import copy
import time

import torch

from .. import settings
from ..training import calc_loss_batch


def estimate_seconds(model, loaders, num_epochs=None, eval_freq=None, eval_iter=None, steps=2):
    """The whole run's time on this machine, projected from ``steps`` timed training steps (on a copy) and one
    evaluation batch. PyTorch's random generator is left as it was, so the run sees the lecture's batches."""
    train_loader, val_loader, test_loader = loaders
    num_epochs, eval_freq = num_epochs or settings.NUM_EPOCHS, eval_freq or settings.EVAL_FREQ
    eval_iter = eval_iter or settings.EVAL_ITER
    state = torch.get_rng_state()
    try:
        trial = copy.deepcopy(model)
        optimizer = torch.optim.AdamW([p for p in trial.parameters() if p.requires_grad], lr=settings.LEARNING_RATE)
        device = next(trial.parameters()).device
        batches = iter(train_loader)
        step_times = []
        for _ in range(steps + 1):  # the first step warms up
            inputs, targets = next(batches)
            start = time.perf_counter()
            optimizer.zero_grad()
            calc_loss_batch(inputs, targets, trial, device).backward()
            optimizer.step()
            step_times.append(time.perf_counter() - start)
        trial.eval()
        inputs, targets = next(iter(val_loader))
        start = time.perf_counter()
        with torch.no_grad():
            calc_loss_batch(inputs, targets, trial, device)
        eval_batch = time.perf_counter() - start
        del trial, optimizer
    finally:
        torch.set_rng_state(state)
    total_steps = num_epochs * len(train_loader)
    eval_batches = (total_steps // eval_freq + 1) * 2 * eval_iter + num_epochs * 2 * eval_iter
    eval_batches += len(val_loader) + len(test_loader)  # the final accuracy
    return min(step_times[1:]) * total_steps + eval_batch * eval_batches
