"""Patch items read from a selection CSV (docs/architecture.md "Selection"), and the
per-item agent reply types shared by the backends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..formats.selection_csv import CAPTIONING_COLUMNS, read_selection_rows

class SelectionError(ValueError):
    pass


@dataclass(frozen=True)
class PatchItem:
    slide_id: str
    x: int
    y: int
    level: int
    size: int           # patch side in level-0 px (what read_region needs)
    size_px: int        # patch side in px at the target mpp
    image: str          # as written in the selection CSV (relative to the patches folder)
    path: Path          # resolved image file
    mpp: float | None   # µm per pixel of the image file (None = unknown)

    @property
    def key(self) -> tuple[int, int]:
        return (self.x, self.y)

    @property
    def field_um(self) -> float | None:
        return None if self.mpp is None else self.mpp * self.size_px


@dataclass
class Reply:
    """One agent's answer. ``attempts`` counts HTTP/generation tries, retries included."""
    text: str
    attempts: int = 1
    seconds: float = 0.0


class AgentError(RuntimeError):
    """An agent gave up on one item (recorded as status=failed, the run goes on)."""

    def __init__(self, message: str, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


class CaptioningAborted(RuntimeError):
    """The run cannot go on for ANY item (records cannot be written, the server refuses the
    credentials or does not serve the model): raised out of the run, never recorded per item.
    Records already written are kept; a rerun resumes after the cause is fixed."""


def resolve_image(patches_dir: Path, image: str, slide_id: str) -> Path:
    """``image`` is relative to the selection's patches root (``<slide>/<x>_<y>.jpg``); also
    accept being handed the per-slide folder itself."""
    cands = [patches_dir / image]
    if patches_dir.name == slide_id and image.startswith(slide_id + "/"):
        cands.append(patches_dir.parent / image)
    for c in cands:
        if c.is_file():
            return c
    return cands[0]


def read_selection(csv_path: str | Path, patches_dir: str | Path,
                   target_mpp: float | None = None, check_files: bool = True) -> list[PatchItem]:
    """Read a selection CSV. ``target_mpp`` is µm/px of a patch at ``size_px``; the image's
    own mpp is scaled if the file was saved at another size (read lazily by backends)."""
    csv_path, patches_dir = Path(csv_path), Path(patches_dir)
    if not csv_path.is_file():
        raise SelectionError(f"selection CSV {csv_path} does not exist (run select_patches first)")
    items: list[PatchItem] = []
    seen: set[tuple[int, int]] = set()
    for line, row in read_selection_rows(csv_path, CAPTIONING_COLUMNS, SelectionError):
        try:
            x, y = int(float(row["x"])), int(float(row["y"]))
            level = int(float(row["level"] or 0))
            size = int(float(row["patch_size_level0"]))
            size_px = int(float(row["size_px"]))
        except (TypeError, ValueError):
            raise SelectionError(f"{csv_path} line {line}: x/y/level/patch_size_level0/"
                                 f"size_px must be numbers, got {row}") from None
        if (x, y) in seen:  # the same patch picked by prompt and cluster: caption once
            continue
        seen.add((x, y))
        path = resolve_image(patches_dir, row["image"], row["slide_id"])
        if check_files and not path.is_file():
            raise SelectionError(f"{csv_path} line {line}: patch image {path} is missing; "
                                 "`pathgen caption --patches-root` must be the folder the 'image' "
                                 "column is relative to (selection/patches)")
        items.append(PatchItem(row["slide_id"], x, y, level, size, size_px, row["image"],
                               path, target_mpp))
    return items

