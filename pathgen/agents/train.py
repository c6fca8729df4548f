"""Resumable LoRA fine-tuning of one agent on its SFT files, with validation loss.

The batch order is a pure function of (seed, step): a seeded permutation per epoch over the
training examples. A checkpoint holds the adapter weights and trainer_state.pt (optimizer,
scheduler, RNG states, step, loss history), so a resumed run takes the very batches, learning
rates and dropout masks the uninterrupted run would have taken (pathgen.agents.checkpoint).
"""

from __future__ import annotations

import functools
import logging
import math
import random
from pathlib import Path

from . import checkpoint as ck
from .lora import load_base, wrap_lora
from .sft import EncodedDataset, collate, load_examples

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batch_indices(n: int, batch_size: int, seed: int, micro: int) -> list[int]:
    """Example indices of micro-batch ``micro``: a stream of per-epoch seeded permutations."""
    import torch

    out, perms = [], {}
    for pos in range(micro * batch_size, (micro + 1) * batch_size):
        epoch = pos // n
        if epoch not in perms:
            perms[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        out.append(perms[epoch][pos % n])
    return out


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _loader(dataset, indices_of, start: int, stop: int, pad_id: int, workers: int):
    """Micro-batches ``start``..``stop-1`` in their fixed order (encoding in ``workers``)."""
    import torch
    from torch.utils.data import DataLoader

    # a private generator: creating the loader must not draw from the global RNG (a resumed
    # run would then see other dropout masks than the uninterrupted one)
    return DataLoader(dataset, batch_sampler=[indices_of(i) for i in range(start, stop)],
                      collate_fn=functools.partial(collate, pad_id=pad_id), num_workers=workers,
                      generator=torch.Generator().manual_seed(start))


def _to(batch: dict, device, dtype) -> dict:
    out = {k: v.to(device) for k, v in batch.items()}
    if "pixel_values" in out and out["pixel_values"].is_floating_point():
        out["pixel_values"] = out["pixel_values"].to(dtype)
    return out


def evaluate(model, dataset, pad_id: int, batch_size: int, device, dtype) -> float | None:
    """Token-weighted mean loss over ``dataset`` (None when it is empty)."""
    import torch

    if len(dataset) == 0:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(dataset), batch_size):
            batch = _to(collate([dataset[j] for j in range(i, min(i + batch_size, len(dataset)))], pad_id),
                        device, dtype)
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * n
            tokens += n
    model.train()
    return total / max(1, tokens)


def _optimizer(model, tcfg):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tcfg.learning_rate, weight_decay=tcfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, tcfg.warmup_steps, tcfg.max_steps))
    return opt, sched


def _setup(train_json, val_json, run_dir: Path, tcfg, image_folder, restart: bool):
    seed_everything(tcfg.seed)
    ck.check_run(run_dir, ck.fingerprint(tcfg, [Path(train_json), Path(val_json)], tcfg.base_model), restart)
    train_ex = load_examples(train_json, image_folder)
    if not train_ex:
        raise ValueError(f"{train_json} holds no training examples")
    vlm, processor = load_base(tcfg.base_model, tcfg)
    model = wrap_lora(vlm, tcfg)
    model.train()
    opt, sched = _optimizer(model, tcfg)
    step, history = 0, []
    last = ck.latest_checkpoint(run_dir)
    if last is not None:
        step, history = ck.load_checkpoint(last, model, opt, sched)
        log.info("resuming %s at step %d", last, step)
    train_ds = EncodedDataset(train_ex, processor, tcfg.max_length)
    val_ds = EncodedDataset(load_examples(val_json, image_folder), processor, tcfg.max_length)
    return model, processor, opt, sched, step, history, train_ds, val_ds


def train_agent(train_json, val_json, run_dir, tcfg, image_folder, restart: bool = False,
                stop_after: int | None = None) -> dict:
    """Train (or resume) LoRA adapters; returns {step, checkpoint, train_loss, val_loss}.
    ``stop_after``: stop once that many steps are done (a planned interruption; a later call
    resumes from the checkpoint written then)."""
    import torch

    run_dir = Path(run_dir)
    model, processor, opt, sched, step, history, train_ds, val_ds = _setup(
        train_json, val_json, run_dir, tcfg, image_folder, restart)
    device, dtype = next(model.parameters()).device, model.base_model.model.dtype
    pad_id = processor.tokenizer.pad_token_id if processor.tokenizer.pad_token_id is not None \
        else processor.tokenizer.eos_token_id
    accum, end = tcfg.grad_accum_steps, min(tcfg.max_steps, stop_after or tcfg.max_steps)
    ckpt = ck.latest_checkpoint(run_dir)
    batches = iter(_loader(train_ds, lambda i: batch_indices(len(train_ds), tcfg.batch_size, tcfg.seed, i),
                           step * accum, end * accum, pad_id, tcfg.num_workers if device.type != "cpu" else 0))
    while step < end:
        loss_sum = 0.0
        for _ in range(accum):
            loss = model(**_to(next(batches), device, dtype)).loss / accum
            loss.backward()
            loss_sum += loss.detach().item()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        row = {"step": step + 1, "train_loss": round(loss_sum, 6), "val_loss": None,
               "lr": sched.get_last_lr()[0]}
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step % tcfg.eval_every == 0 or step == tcfg.max_steps:
            row["val_loss"] = evaluate(model, val_ds, pad_id, tcfg.batch_size, device, dtype)
        history.append(row)
        log.info("step %d/%d train_loss %.4f%s", step, tcfg.max_steps, row["train_loss"],
                 "" if row["val_loss"] is None else f" val_loss {row['val_loss']:.4f}")
        if step % tcfg.save_every == 0 or step == end:
            ckpt = ck.save_checkpoint(run_dir, step, model, opt, sched, history, tcfg.keep_checkpoints)
    vals = [r["val_loss"] for r in history if r["val_loss"] is not None]
    return {"step": step, "checkpoint": str(ckpt) if ckpt else None, "done": step >= tcfg.max_steps,
            "train_loss": history[-1]["train_loss"] if history else None,
            "val_loss": vals[-1] if vals else None}
