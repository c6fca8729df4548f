"""Measurements on one H&E patch, for the morphometric captioning baseline.

Measurement-based baseline, not a language model. Steps: colour deconvolution
(Ruifrok & Johnston H-E-DAB, ``skimage.color.rgb2hed``); nuclei = haematoxylin-rich
objects split by a distance-transform watershed; physical units from the patch mpp.
Pure functions of (RGB array, mpp) -> :class:`Measurements`; no text here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage import color, feature, filters, measure, morphology, segmentation

# Haematoxylin optical density (rgb2hed units) above which a pixel is nuclear. Pink stroma and
# cytoplasm sit at ~0.00-0.01, hyperchromatic nuclei at 0.10-0.20; Otsu picks the split
# inside tissue but never below this floor (a nucleus-free stroma patch stays nucleus-free).
H_FLOOR = 0.04
WHITE_GREY = 0.82       # brighter and ...
WHITE_MAX_SAT = 0.12    # ... less saturated than this = background / lumen / fat
DEBRIS_MIN_UM2 = 0.5    # smaller H-positive specks are noise


@dataclass(frozen=True)
class Measurements:
    mpp: float
    field_um: float
    tissue_fraction: float          # of the field
    white_fraction: float           # white area inside the field
    nuclei: int
    nuclei_per_mm2: float           # per mm² of tissue
    nuclear_area_um2: float         # mean
    nuclear_area_p10_um2: float
    nuclear_area_p90_um2: float
    area_cv: float                  # pleomorphism: coefficient of variation of area
    eccentricity: float             # mean (0 = round, 1 = line)
    eccentricity_cv: float
    chromatin_darkness: float       # mean 1 - grey level inside nuclei (0..1)
    nc_fraction: float              # nuclear area / tissue area
    eosin_fraction: float           # eosinophilic non-nuclear tissue / tissue area
    lumina: int                     # white holes enclosed by tissue, >= lumen_min_area
    lumen_fraction: float           # their area / field area
    debris_per_mm2: float           # small fragmented H-positive bodies per mm² of tissue
    debris: int

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean()) if len(values) > 1 and values.mean() > 0 else 0.0


def measure_patch(rgb: np.ndarray, mpp: float, nucleus_min_area_um2: float = 6.0,
                  lumen_min_area_um2: float = 150.0) -> Measurements:
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an RGB image, got shape {rgb.shape}")
    rgb = rgb[..., :3]
    h, w = rgb.shape[:2]
    px_um2 = mpp * mpp
    img = rgb.astype(np.float32) / 255.0
    grey = img.mean(axis=2)
    sat = img.max(axis=2) - img.min(axis=2)
    white = (grey > WHITE_GREY) & (sat < WHITE_MAX_SAT)
    tissue = ~white
    tissue = morphology.remove_small_objects(tissue, max_size=max(1, int(20 / px_um2)))
    tissue_px = int(tissue.sum())
    tissue_mm2 = max(tissue_px * px_um2 / 1e6, 1e-9)

    # White areas enclosed by tissue (not touching the border): lumina, vacuoles, fat cells.
    holes = segmentation.clear_border(measure.label(white & ~tissue))
    lumen_min_px = lumen_min_area_um2 / px_um2
    hole_areas = np.bincount(holes.ravel())[1:] if holes.max() else np.zeros(0)
    big = hole_areas >= lumen_min_px
    lumina = int(big.sum())
    lumen_fraction = float(hole_areas[big].sum() / (h * w)) if lumina else 0.0

    hed = color.rgb2hed(rgb)
    hema, eosin = hed[..., 0], hed[..., 1]
    thr = H_FLOOR
    if tissue_px > 100:
        vals = hema[tissue]
        if np.ptp(vals) > 1e-6:
            thr = max(H_FLOOR, float(filters.threshold_otsu(vals)))
    nuc_mask = (hema > thr) & tissue
    nuc_mask = ndi.binary_fill_holes(ndi.binary_opening(nuc_mask, structure=morphology.disk(1)))

    # Split touching nuclei: watershed on the distance map from one marker per nucleus.
    dist = ndi.distance_transform_edt(nuc_mask)
    min_dist = max(2, int(round(2.0 / mpp)))
    labels_cc = measure.label(nuc_mask)
    peaks = feature.peak_local_max(dist, min_distance=min_dist, labels=labels_cc, exclude_border=False)
    markers = np.zeros_like(labels_cc)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = segmentation.watershed(-dist, markers, mask=nuc_mask) if len(peaks) else labels_cc

    props = measure.regionprops(labels, intensity_image=grey)
    areas = np.array([p.area * px_um2 for p in props]) if props else np.zeros(0)
    is_nuc = areas >= nucleus_min_area_um2
    is_debris = (areas >= DEBRIS_MIN_UM2) & ~is_nuc
    nuc_props = [p for p, k in zip(props, is_nuc) if k]
    n_areas = areas[is_nuc]
    ecc = np.array([p.eccentricity for p in nuc_props]) if nuc_props else np.zeros(0)
    dark = np.array([1.0 - p.intensity_mean for p in nuc_props]) if nuc_props else np.zeros(0)
    nuc_px = float(sum(p.area for p in nuc_props))

    eos_mask = tissue & ~nuc_mask & (eosin > 0.01)
    return Measurements(
        mpp=float(mpp), field_um=float(max(h, w) * mpp),
        tissue_fraction=tissue_px / (h * w), white_fraction=float(white.mean()),
        nuclei=len(nuc_props), nuclei_per_mm2=len(nuc_props) / tissue_mm2,
        nuclear_area_um2=float(n_areas.mean()) if len(n_areas) else 0.0,
        nuclear_area_p10_um2=float(np.percentile(n_areas, 10)) if len(n_areas) else 0.0,
        nuclear_area_p90_um2=float(np.percentile(n_areas, 90)) if len(n_areas) else 0.0,
        area_cv=_cv(n_areas), eccentricity=float(ecc.mean()) if len(ecc) else 0.0,
        eccentricity_cv=_cv(ecc), chromatin_darkness=float(dark.mean()) if len(dark) else 0.0,
        nc_fraction=nuc_px / max(tissue_px, 1), eosin_fraction=float(eos_mask.sum() / max(tissue_px, 1)),
        lumina=lumina, lumen_fraction=lumen_fraction,
        debris=int(is_debris.sum()), debris_per_mm2=float(is_debris.sum() / tissue_mm2),
    )
