"""Checkpoints of an agent training run: the adapter weights (peft save_pretrained) and
trainer_state.pt (optimizer, scheduler, RNG states, step, loss history), the loss CSV, and
run.json, which fingerprints settings + data so a checkpoint of other settings is never
resumed silently."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
from pathlib import Path

from ..atomic import atomic_dir, atomic_path, write_json
from .files import agents_checkpoint, agents_run_files, agents_trainer_state


BOOKKEEPING = ("eval_every", "save_every", "keep_checkpoints", "device", "num_workers")


class RunMismatch(RuntimeError):
    pass


def fingerprint(tcfg, files: list[Path], base_model: str) -> str:
    # what shapes the weights; how often to evaluate/save and where to run do not
    shaping = tcfg.model_dump(mode="json", exclude=set(BOOKKEEPING))
    h = hashlib.sha256(json.dumps({"base": base_model, "train": shaping}, sort_keys=True).encode())
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def check_run(run_dir: Path, fingerprint: str, restart: bool) -> None:
    files = agents_run_files(run_dir)
    if files["run"].is_file():
        old = json.loads(files["run"].read_text()).get("fingerprint")
        if old != fingerprint:
            if not restart:
                raise RunMismatch(f"{run_dir} holds a training run of other settings or data "
                                  f"(fingerprint {old} != {fingerprint}); pass --restart to "
                                  "start over there, or use another --out")
            shutil.rmtree(files["checkpoints"], ignore_errors=True)
    write_json(files["run"], {"fingerprint": fingerprint})


def latest_checkpoint(run_dir: Path) -> Path | None:
    d = agents_run_files(run_dir)["checkpoints"]
    done = sorted(p for p in d.glob("step_*") if agents_trainer_state(p).is_file()) if d.is_dir() else []
    return done[-1] if done else None


def _rng_state() -> dict:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, step: int, model, opt, sched, history: list[dict], keep: int) -> Path:
    import torch

    ckpt = agents_checkpoint(run_dir, step)
    with atomic_dir(ckpt) as tmp:
        model.save_pretrained(tmp)
        torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "rng": _rng_state(), "history": history}, agents_trainer_state(tmp))
    old = sorted(ckpt.parent.glob("step_*"))[:-keep]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    write_loss_csv(run_dir, history)
    return ckpt


def write_loss_csv(run_dir: Path, history: list[dict]) -> None:
    path = agents_run_files(run_dir)["loss_csv"]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["step", "train_loss", "val_loss", "lr"])
        w.writeheader()
        w.writerows(history)


def load_checkpoint(checkpoint: Path, model, opt, sched) -> tuple[int, list[dict]]:
    """Restore adapter, optimizer, scheduler and RNG states; returns (step, history)."""
    import torch

    from .lora import load_adapter_weights

    load_adapter_weights(model, checkpoint)
    state = torch.load(agents_trainer_state(checkpoint), map_location="cpu", weights_only=False)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return int(state["step"]), list(state["history"])
