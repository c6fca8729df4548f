"""The demo cohort: cases, labels and the caption/holdout split of the demo slides.

Light on purpose (the Snakefile imports it at parse time). Everything about slide `demo_<k>`
is a function of its index `k` and the seed alone, never of `demo.n_slides`, so raising
`n_slides` adds slides without redrawing, relabelling or re-splitting the existing ones:

* cases are consecutive and every third case (case_no % 3 == 1) has two slides (two blocks
  of one patient); a two-slide case cut off by `n_slides` gets its second slide later;
* case labels alternate (phase set by the seed);
* one case in every block of p = round(1 / holdout_fraction) consecutive cases is held out,
  at a position chosen so that consecutive held-out cases alternate labels. The holdout is
  patient-disjoint by construction and stable as the cohort grows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoSlide:
    index: int
    slide_id: str
    case_id: str
    label: str  # tumor | normal
    split: str  # caption | holdout


def demo_slide_id(index: int) -> str:
    return f"demo_{index:03d}"


def demo_slide_index(slide_id: str) -> int | None:
    """k of a demo slide id `demo_<k>` (None for any other id)."""
    head, _, num = str(slide_id).partition("_")
    return int(num) if head == "demo" and num.isdigit() and len(num) >= 3 else None


def _case_of(index: int) -> tuple[int, int]:
    """(case_no, slot) of slide `index`: cases of sizes 1, 2, 1, 1, 2, 1, ... (period 3 cases = 4 slides)."""
    period, rem = divmod(index, 4)
    case_in_period, slot = ((0, 0), (1, 0), (1, 1), (2, 0))[rem]
    return period * 3 + case_in_period, slot


def case_label(case_no: int, seed: int) -> str:
    return "tumor" if (case_no + seed) % 2 == 0 else "normal"


def case_is_holdout(case_no: int, holdout_fraction: float) -> bool:
    if holdout_fraction <= 0:
        return False
    p = max(1, round(1 / holdout_fraction))
    if p == 1:
        return True
    block, pos = divmod(case_no, p)
    # Labels alternate by case parity: with an even block length the same position in every
    # block has the same parity, so alternate the position to alternate held-out labels.
    want = p - 1 - (block % 2) if p % 2 == 0 else p - 1
    return pos == want


def demo_slide(index: int, holdout_fraction: float, seed: int = 0) -> DemoSlide:
    case_no, _ = _case_of(index)
    return DemoSlide(index, demo_slide_id(index), f"case_{case_no:03d}", case_label(case_no, seed),
                     "holdout" if case_is_holdout(case_no, holdout_fraction) else "caption")


def demo_cohort(n_slides: int, holdout_fraction: float, seed: int = 0) -> list[DemoSlide]:
    """The first `n_slides` demo slides (a prefix of one infinite, fixed sequence)."""
    return [demo_slide(k, holdout_fraction, seed) for k in range(n_slides)]


def demo_holdout_ids(n_slides: int, holdout_fraction: float, seed: int = 0) -> list[str]:
    return [s.slide_id for s in demo_cohort(n_slides, holdout_fraction, seed) if s.split == "holdout"]
