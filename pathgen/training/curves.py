"""Loss curves from open_clip's text log (``<logs>/<name>/out.log``; no tensorboard needed).

Train lines look like (open_clip_train/train.py):
``... | INFO | Train Epoch: 0 [ 64/960 (7%)] Data (t): ... LR: 0.000100 Logit Scale: 14.286
Contrastive_loss: 4.1589 (4.1589) Loss: 4.1589 (4.1589)`` — we keep the instantaneous value
(before the parenthesised running mean).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path

_TRAIN = re.compile(r"Train Epoch: (\d+) \[\s*(\d+)/(\d+)")
_LOSS = re.compile(r"\b([A-Za-z_]*loss): ([-+0-9.eE]+) \(", re.IGNORECASE)
_LR = re.compile(r"LR: ([-+0-9.eE]+)")


@dataclass
class LossPoint:
    stage: str
    epoch: int
    samples: int          # samples seen within the epoch
    epoch_size: int
    loss: float
    lr: float | None

    @property
    def progress(self) -> float:
        """Fractional epoch position (x axis)."""
        return self.epoch + (self.samples / self.epoch_size if self.epoch_size else 0.0)


def parse_out_log(path: str | Path, stage: str = "") -> list[LossPoint]:
    points = []
    for line in Path(path).read_text(errors="replace").splitlines():
        m = _TRAIN.search(line)
        if not m:
            continue
        losses = {k.lower(): float(v) for k, v in _LOSS.findall(line)}
        if not losses:
            continue
        loss = losses.get("loss", next(iter(losses.values())))
        lr = _LR.search(line)
        points.append(LossPoint(stage, int(m.group(1)), int(m.group(2)), int(m.group(3)), loss,
                                float(lr.group(1)) if lr else None))
    return points


def plot_loss(points: list[LossPoint], target: str | Path, title: str = "CLIP training loss") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    offset = 0.0
    for stage in dict.fromkeys(p.stage for p in points):
        pts = [p for p in points if p.stage == stage]
        xs = [offset + p.progress for p in pts]
        ax.plot(xs, [p.loss for p in pts], marker=".", label=stage or "train")
        offset = max(xs) if xs else offset
    ax.set_xlabel("epoch (stages in sequence)")
    ax.set_ylabel("contrastive loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
