"""Train/val split by slide: a patch never shares a split with another patch of its slide.

Membership hangs on a seeded hash of the slide id, so adding slides never moves an old one.
"""

from __future__ import annotations

import hashlib


def _u(seed: int, slide: str) -> float:
    digest = hashlib.sha256(f"{seed}:{slide}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_slides(slides: list[str], val_fraction: float, seed: int = 0) -> dict[str, str]:
    """slide -> 'train' | 'val'. With two or more slides and ``val_fraction`` > 0 both splits
    are non-empty (the lowest-hash slide goes to val, the highest stays in train)."""
    uniq = sorted(set(slides))
    out = {s: "val" if _u(seed, s) < val_fraction else "train" for s in uniq}
    if len(uniq) >= 2 and val_fraction > 0:
        ranked = sorted(uniq, key=lambda s: _u(seed, s))
        if "val" not in out.values():
            out[ranked[0]] = "val"
        if "train" not in out.values():
            out[ranked[-1]] = "train"
    return out
