"""Train and evaluate one MIL model on one fold (reference protocol of the PathGen paper).

AdamW (lr 1e-4, weight decay 1e-5), cosine schedule over the epochs, batch size 1 (one slide
per step); after each epoch the validation set is scored and the weights of the best epoch
are restored for testing. `select_by` names the criterion: `auroc` (highest validation macro
AUROC) or `f1_auc` (the paper's: highest validation macro F1 + macro AUROC); ties and
undefined values (NaN counts as -inf) are broken by lower validation loss, then the earlier
epoch.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .bags import BagStore
from .metrics import classification_metrics
from .models import build_model

log = logging.getLogger(__name__)


@dataclass
class TrainParams:
    epochs: int = 50
    lr: float = 1e-4
    weight_decay: float = 1e-5
    seed: int = 0
    device: str = "cpu"
    select_by: str = "auroc"
    model_kwargs: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, mil, device: str | None = None) -> "TrainParams":
        kw = dict(hidden_dim=mil.hidden_dim, attn_dim=mil.attn_dim, dropout=mil.dropout,
                  transmil_heads=mil.transmil_heads, **mil.acmil.model_dump())
        return cls(epochs=mil.epochs, lr=mil.lr, weight_decay=mil.weight_decay, seed=mil.seed,
                   device=resolve_device(device or mil.device), select_by=mil.select_by, model_kwargs=kw)


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class FoldResult:
    best_epoch: int
    selection: str
    history: list[dict]
    val: dict
    test: dict
    test_ids: list[str]
    test_y: np.ndarray
    test_probs: np.ndarray
    state_dict: dict
    seconds: float


@torch.no_grad()
def predict(model, store: BagStore, slide_ids: list[str], device: str,
            want_attention: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    model.eval()
    probs, attn = [], {}
    for sid in slide_ids:
        out = model(store[sid].features.to(device))
        probs.append(torch.softmax(out["logits"], dim=1)[0].cpu().numpy())
        if want_attention:
            attn[sid] = out["attention"].cpu().numpy()
    return np.array(probs).reshape(len(slide_ids), -1), attn


SELECTION = {"auroc": "best validation AUROC, then loss",
             "f1_auc": "best validation macro F1 + AUROC, then loss"}


def _finite(v: float) -> float:
    return -math.inf if v is None or math.isnan(v) else float(v)


def selection_key(val: dict, select_by: str) -> tuple[float, float]:
    """Larger is better: (criterion, -loss) of one epoch's validation metrics."""
    if select_by == "auroc":
        score = _finite(val["auroc"])
    elif select_by == "f1_auc":
        score = _finite(val["f1"]) + _finite(val["auroc"])
    else:
        raise ValueError(f"unknown MIL selection criterion {select_by!r}; known: {', '.join(SELECTION)}")
    loss = val["loss"]
    return score, -math.inf if loss is None or math.isnan(loss) else -float(loss)


def pick_epoch(history: list[dict], select_by: str) -> int:
    """Index of the selected epoch in a training history (`val_<metric>` keys); earliest on ties."""
    keys = [selection_key({k[4:]: v for k, v in rec.items() if k.startswith("val_")}, select_by)
            for rec in history]
    return max(range(len(keys)), key=lambda i: (keys[i], -i))


def train_fold(model_name: str, store: BagStore, labels: dict[str, int], split: dict[str, list[str]],
               n_classes: int, params: TrainParams, fold: int = 0) -> FoldResult:
    t0 = time.perf_counter()
    seed = params.seed + 7919 * fold
    seed_everything(seed)
    dev = params.device
    model = build_model(model_name, store.index.dim, n_classes, **params.model_kwargs).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=params.epochs)
    train_ids = [s for s in split["train"] if s in store]
    val_ids = [s for s in split["val"] if s in store]
    test_ids = [s for s in split["test"] if s in store]
    if not train_ids or not test_ids:
        raise ValueError(f"fold {fold}: no usable train or test slides after skipping missing bags")
    val_y = np.array([labels[s] for s in val_ids], dtype=int)
    order_rng = np.random.default_rng(seed)
    history, best, best_state, best_epoch = [], None, None, -1
    for epoch in range(params.epochs):
        model.train()
        total = 0.0
        for i in order_rng.permutation(len(train_ids)):
            sid = train_ids[i]
            x = store[sid].features.to(dev)
            y = torch.tensor(labels[sid], device=dev)
            loss = model.loss(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        sched.step()
        rec = {"epoch": epoch, "train_loss": total / len(train_ids)}
        if val_ids:
            vp, _ = predict(model, store, val_ids, dev)
            vm = classification_metrics(val_y, vp)
            rec.update({f"val_{k}": v for k, v in vm.items()})
            if best is None or selection_key(vm, params.select_by) > selection_key(best, params.select_by):
                best, best_epoch = vm, epoch
                best_state = copy.deepcopy(model.state_dict())
        history.append(rec)
    if best_state is None:  # no validation slides: keep the last epoch
        selection, best_epoch, best = "last epoch (no validation slides)", params.epochs - 1, {}
    else:
        selection = SELECTION[params.select_by]
        model.load_state_dict(best_state)
    test_y = np.array([labels[s] for s in test_ids], dtype=int)
    tp, _ = predict(model, store, test_ids, dev)
    return FoldResult(best_epoch, selection, history, best, classification_metrics(test_y, tp),
                      test_ids, test_y, tp, {k: v.cpu() for k, v in model.state_dict().items()},
                      time.perf_counter() - t0)
