"""Slide bags: locate per-slide feature files and load them, in memory or re-read per epoch.

Recognised layouts (first match wins, per slide):
- pathgen / TRIDENT `features_<enc>/<slide>.h5`: `features` (N, D) + `coords` (N, 2) whose
  attributes give the patch size (TRIDENT `patch_size_level0`, CLAM `patch_size`·`downsample`);
- CLAM `h5_files/<slide>.h5` (`features`, `coords`) or `pt_files/<slide>.pt` (the tensor);
- STAMP `<slide>.h5` with `feats` (N, D) (coords in µm, so heatmaps use `tile_size_um`/mpp
  only when the file says so).
Bags with 0 patches are skipped with a warning (a 0-instance forward pass has no meaning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from ..config import ConfigError
from ..export.files import clam_export_files
from .files import peer_feature_candidates

log = logging.getLogger(__name__)


@dataclass
class Bag:
    slide_id: str
    features: torch.Tensor          # (N, D) float32
    coords: np.ndarray | None       # (N, 2) level-0 px, or None
    patch_size_level0: float | None


@dataclass
class BagInfo:
    slide_id: str
    path: Path
    n: int
    dim: int
    itemsize: int
    attrs: dict = field(default_factory=dict)


def find_feature_file(features_dir: Path, slide_id: str) -> Path | None:
    for cand in peer_feature_candidates(features_dir, slide_id):
        if cand.exists():
            return cand
    return None


def _clam_h5_beside(pt_path: Path, slide_id: str) -> Path:
    """CLAM's h5_files/<slide>.h5 (coords) next to its pt_files/<slide>.pt."""
    return clam_export_files(pt_path.parent.parent, slide_id)["h5"]


def _patch_size_level0(attrs: dict) -> float | None:
    if "patch_size_level0" in attrs:
        return float(attrs["patch_size_level0"])
    if "patch_size" in attrs:
        ds = np.atleast_1d(attrs.get("downsample", [1.0])).astype(float)
        return float(attrs["patch_size"]) * float(ds[0])
    return None


def _h5_features_key(f: h5py.File, path: Path) -> str:
    for key in ("features", "feats"):
        if key in f:
            return key
    raise ConfigError(f"{path} has no `features` (pathgen/CLAM/TRIDENT) or `feats` (STAMP) dataset; "
                      f"found {list(f.keys())}")


def probe(path: Path, slide_id: str) -> BagInfo:
    """Shape and geometry of a feature file without reading the features."""
    try:
        if path.suffix == ".pt":
            t = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(t, torch.Tensor) or t.dim() != 2:
                raise ConfigError(f"{path}: expected a 2-D feature tensor (CLAM pt_files)")
            attrs = {}
            h5 = _clam_h5_beside(path, slide_id)
            if h5.exists():
                with h5py.File(h5, "r") as f:
                    attrs = dict(f["coords"].attrs) if "coords" in f else {}
            return BagInfo(slide_id, path, t.shape[0], t.shape[1], t.element_size(), attrs)
        with h5py.File(path, "r") as f:
            ds = f[_h5_features_key(f, path)]
            if ds.ndim != 2:
                raise ConfigError(f"{path}: features must be 2-D (N, D), got shape {ds.shape}")
            attrs = dict(f["coords"].attrs) if "coords" in f else {}
            attrs.update({f"root:{k}": v for k, v in f.attrs.items()})
            return BagInfo(slide_id, path, ds.shape[0], ds.shape[1], ds.dtype.itemsize, attrs)
    except (OSError, RuntimeError) as err:
        raise ConfigError(f"cannot read feature file {path}: {err}. Re-run feature extraction for "
                          f"this slide or remove it from the labels table.") from None


def read_bag(info: BagInfo) -> Bag:
    """Read one bag from disk (features as float32)."""
    path = info.path
    coords = None
    if path.suffix == ".pt":
        feats = torch.load(path, map_location="cpu", weights_only=True).float()
        h5 = _clam_h5_beside(path, info.slide_id)
        if h5.exists():
            with h5py.File(h5, "r") as f:
                coords = f["coords"][:] if "coords" in f else None
    else:
        with h5py.File(path, "r") as f:
            key = _h5_features_key(f, path)
            own_schema = key == "features" and "coords" in f
            if not own_schema:  # STAMP (`feats`, µm coords) or features without coords
                feats = torch.from_numpy(np.asarray(f[key][:], dtype=np.float32))
                if "coords" in f and f.attrs.get("unit", "px") != "um":
                    coords = np.asarray(f["coords"][:], dtype=np.int64)
        if own_schema:  # pathgen / TRIDENT / CLAM h5: the feature stage's reader (validates rows)
            from ..features.h5io import read_features
            arr, coords, _ = read_features(path)
            feats = torch.from_numpy(np.asarray(arr, dtype=np.float32))
    return Bag(info.slide_id, feats, coords, _patch_size_level0(info.attrs))


@dataclass
class BagIndex:
    """What is on disk for a task: usable bags plus the reasons others were skipped."""
    infos: dict[str, BagInfo]
    skipped: dict[str, str]
    dim: int


def index_bags(features_dir: Path, slide_ids: list[str]) -> BagIndex:
    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise ConfigError(f"features folder {features_dir} does not exist; run feature extraction "
                          "or fix the task's `features_dir` / --features-dir")
    infos, skipped, dims = {}, {}, {}
    for sid in slide_ids:
        path = find_feature_file(features_dir, sid)
        if path is None:
            skipped[sid] = "no feature file"
            continue
        info = probe(path, sid)
        if info.n == 0:
            skipped[sid] = "0 patches"
            continue
        infos[sid] = info
        dims.setdefault(info.dim, path)
    if skipped:
        log.warning("%d slide(s) skipped: %s", len(skipped),
                    "; ".join(f"{k} ({v})" for k, v in list(skipped.items())[:10]))
    if len(dims) > 1:
        raise ConfigError("feature files disagree on the feature width: " +
                          ", ".join(f"D={d} in {p}" for d, p in dims.items()) +
                          " -- mixed encoders in one folder?")
    if not infos:
        raise ConfigError(f"no usable feature files for the task's slides in {features_dir} "
                          f"(looked for <slide>.h5, h5_files/<slide>.h5, pt_files/<slide>.pt)")
    return BagIndex(infos, skipped, next(iter(dims)))


class BagStore:
    """Bags by slide id: all read once into memory, or (when they do not fit) re-read per access."""

    def __init__(self, index: BagIndex, max_memory_mb: float, in_memory: bool | None = None):
        self.index = index
        need_mb = sum(i.n * i.dim * 4 for i in index.infos.values()) / 2**20
        self.in_memory = need_mb <= max_memory_mb if in_memory is None else in_memory
        self._bags: dict[str, Bag] = {}
        if self.in_memory:
            self._bags = {sid: read_bag(i) for sid, i in index.infos.items()}
        log.info("%d bags (%.1f MiB as float32) %s", len(index.infos), need_mb,
                 "held in memory" if self.in_memory else f"re-read per epoch (> {max_memory_mb} MiB)")

    def __contains__(self, slide_id: str) -> bool:
        return slide_id in self.index.infos

    def __getitem__(self, slide_id: str) -> Bag:
        if self.in_memory:
            return self._bags[slide_id]
        return read_bag(self.index.infos[slide_id])
