"""Measurements on one H&E patch, for the morphometric captioning baseline.

Measurement-based baseline, not a language model. Steps: colour deconvolution
(Ruifrok & Johnston H-E-DAB, ``skimage.color.rgb2hed``); nuclei = haematoxylin-rich objects,
touching ones split by a marker watershed on the distance transform (markers = h-maxima, so an
elongated spindle nucleus stays one object); physical units from the patch mpp; a coarse map of
32 µm blocks gives the share of the field each component covers (for mixed patches).
Pure functions of (RGB array, mpp) -> :class:`Measurements`; no text here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage import color, filters, morphology, segmentation

# -- measurement constants (physical units; rgb2hed optical-density units for stains) ---------
# Haematoxylin OD above which a pixel is nuclear. Pink stroma and cytoplasm sit at ~0.00-0.03,
# nuclei at 0.09-0.20: Otsu picks the split inside tissue, clipped to [H_FLOOR, H_CEIL] so a
# nucleus-free stroma patch stays nucleus-free and a nucleus-rich one keeps faint nuclei.
H_FLOOR, H_CEIL = 0.05, 0.09
H_CYTO = 0.018          # non-nuclear haematoxylin above this = basophilic/amphophilic background
E_POS = 0.01            # eosin OD above this = eosinophilic
WHITE_GREY = 0.82       # brighter and ...
WHITE_MAX_SAT = 0.12    # ... less saturated than this = glass / lumen / fat vacuole
DEBRIS_MIN_UM2 = 0.5    # smaller H-positive specks are noise
SPLIT_H_UM = 0.5        # saddle depth (µm of the distance map) that separates two nuclei
SPINDLE_ECC = 0.92      # eccentricity of a spindle (fibroblast-like) nucleus
LYMPH_AREA_UM2 = (14.0, 48.0)  # small round lymphocyte-like nucleus: area range ...
LYMPH_MAX_ECC = 0.8     # ... and roundness
LARGE_NUCLEUS_UM2 = 50.0       # enlarged (epithelial/tumour-like) nucleus
FAT_MIN_UM2 = 400.0     # a white compartment at least this large counts as a vacuole/fat cell
BLOCK_UM = 32.0         # side of the blocks of the component map


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
    hema_fraction: float            # haematoxylin-tinged non-nuclear tissue / tissue area
    lumina: int                     # white holes enclosed by tissue, >= lumen_min_area
    lumen_fraction: float           # their area / field area
    white_compartments: int         # white areas >= FAT_MIN_UM2 (border-touching included)
    debris_per_mm2: float           # small fragmented H-positive bodies per mm² of tissue
    debris: int
    spindle_fraction: float         # nuclei with eccentricity >= SPINDLE_ECC
    lymphoid_fraction: float        # small round nuclei (LYMPH_AREA_UM2, ecc < LYMPH_MAX_ECC)
    large_fraction: float           # nuclei >= LARGE_NUCLEUS_UM2
    # share of BLOCK_UM blocks (of the field) dominated by each component
    block_white: float
    block_lymphoid: float
    block_epithelial: float
    block_debris: float
    block_fibrous: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean()) if len(values) > 1 and values.mean() > 0 else 0.0


def segment_nuclei(hema: np.ndarray, tissue: np.ndarray, mpp: float) -> tuple[np.ndarray, float]:
    """Label image of haematoxylin objects (0 = none) and the threshold used."""
    thr = H_FLOOR
    if tissue.sum() > 100:
        vals = hema[tissue]
        if np.ptp(vals) > 1e-6:
            thr = float(np.clip(filters.threshold_otsu(vals), H_FLOOR, H_CEIL))
    mask = ((hema > thr) & tissue).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    mask = ndi.binary_fill_holes(mask).astype(np.uint8)
    n_cc, cc = cv2.connectedComponents(mask, connectivity=8)
    if n_cc <= 1:
        return cc.astype(np.int32), thr
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    # One marker per regional maximum deeper than SPLIT_H_UM; components without one (thin or
    # tiny objects) keep their own label.
    peaks = morphology.h_maxima(dist, max(1.0, SPLIT_H_UM / mpp))
    markers, n_mk = ndi.label(peaks, structure=np.ones((3, 3)))  # 8-connected: diagonal ridges
    has = np.zeros(n_cc, bool)
    has[np.unique(cc[peaks > 0])] = True
    lack = ~has[cc] & (cc > 0)
    markers[lack] = n_mk + cc[lack]
    labels = segmentation.watershed(-dist, markers, mask=mask.astype(bool))
    return labels.astype(np.int32), thr


def _object_stats(labels: np.ndarray, grey: np.ndarray):
    """Per-object area (px), centroid (y, x), eccentricity and mean grey, vectorised."""
    n = int(labels.max())
    lab = labels.ravel()
    sel = lab > 0
    lab = lab[sel]
    ys, xs = np.divmod(np.flatnonzero(sel), labels.shape[1])
    area = np.bincount(lab, minlength=n + 1)[1:].astype(np.float64)
    present = area > 0
    a = np.maximum(area, 1)
    cy = np.bincount(lab, ys, n + 1)[1:] / a
    cx = np.bincount(lab, xs, n + 1)[1:] / a
    dy, dx = ys - cy[lab - 1], xs - cx[lab - 1]
    # + 1/12: second moment of a unit pixel (as skimage.measure.regionprops)
    myy = np.bincount(lab, dy * dy, n + 1)[1:] / a + 1 / 12
    mxx = np.bincount(lab, dx * dx, n + 1)[1:] / a + 1 / 12
    mxy = np.bincount(lab, dx * dy, n + 1)[1:] / a
    tr, det = mxx + myy, mxx * myy - mxy * mxy
    disc = np.sqrt(np.maximum(tr * tr / 4 - det, 0))
    l1, l2 = tr / 2 + disc, np.maximum(tr / 2 - disc, 0)
    ecc = np.sqrt(1 - l2 / np.maximum(l1, 1e-9))
    mean_grey = np.bincount(lab, grey.ravel()[sel], n + 1)[1:] / a
    return (area[present], cy[present], cx[present], ecc[present], mean_grey[present])


def _white_and_tissue(img: np.ndarray, grey: np.ndarray, px_um2: float) -> tuple[np.ndarray, np.ndarray]:
    """(white, tissue) masks: bright unsaturated pixels are white; white specks under 20 µm²
    count as tissue."""
    sat = img.max(axis=2) - img.min(axis=2)
    white = (grey > WHITE_GREY) & (sat < WHITE_MAX_SAT)
    tissue = morphology.remove_small_objects(~white, max_size=max(1, int(20 / px_um2)))
    return ~tissue, tissue


def _white_spaces(white: np.ndarray, px_um2: float, lumen_min_area_um2: float) -> dict:
    """White areas: enclosed ones (lumina, vacuoles, fat cells) and all large compartments
    (fat cells cut by the field edge are still fat; glass is one compartment beside tissue)."""
    h, w = white.shape
    _, _, wstats, _ = cv2.connectedComponentsWithStats(white.astype(np.uint8), connectivity=4)
    w_area = wstats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    x0, y0 = wstats[1:, cv2.CC_STAT_LEFT], wstats[1:, cv2.CC_STAT_TOP]
    x1, y1 = x0 + wstats[1:, cv2.CC_STAT_WIDTH], y0 + wstats[1:, cv2.CC_STAT_HEIGHT]
    inner = (x0 > 0) & (y0 > 0) & (x1 < w) & (y1 < h)
    big = inner & (w_area >= lumen_min_area_um2 / px_um2)
    lumina = int(big.sum())
    return {"lumina": lumina, "lumen_fraction": float(w_area[big].sum() / (h * w)) if lumina else 0.0,
            "white_compartments": int((w_area >= FAT_MIN_UM2 / px_um2).sum())}


@dataclass(frozen=True)
class _Nuclei:
    """The segmented H-positive objects, split into nuclei and debris, with the nuclei's
    per-object measures and classes."""

    mask: np.ndarray         # pixels of any H-positive object
    cy: np.ndarray
    cx: np.ndarray
    is_nuc: np.ndarray       # per object
    is_debris: np.ndarray    # per object
    areas: np.ndarray        # per nucleus, µm²
    ecc: np.ndarray          # per nucleus
    dark: np.ndarray         # per nucleus: 1 - mean grey
    px: float                # nuclear pixels
    lymphoid: np.ndarray     # per nucleus
    large: np.ndarray        # per nucleus


def _nuclei(labels: np.ndarray, grey: np.ndarray, px_um2: float, nucleus_min_area_um2: float) -> _Nuclei:
    area_px, cy, cx, ecc_all, grey_mean = _object_stats(labels, grey)
    areas = area_px * px_um2
    is_nuc = areas >= nucleus_min_area_um2
    n_areas, ecc = areas[is_nuc], ecc_all[is_nuc]
    lymphoid = (n_areas >= LYMPH_AREA_UM2[0]) & (n_areas <= LYMPH_AREA_UM2[1]) & (ecc < LYMPH_MAX_ECC)
    return _Nuclei(labels > 0, cy, cx, is_nuc, (areas >= DEBRIS_MIN_UM2) & ~is_nuc, n_areas, ecc,
                   1.0 - grey_mean[is_nuc], float(area_px[is_nuc].sum()), lymphoid,
                   n_areas >= LARGE_NUCLEUS_UM2)


def _nuclear_stats(n: _Nuclei, tissue_px: int, tissue_mm2: float) -> dict:
    a, ecc, dark = n.areas, n.ecc, n.dark
    nn = max(len(a), 1)
    return dict(
        nuclei=int(n.is_nuc.sum()), nuclei_per_mm2=float(n.is_nuc.sum() / tissue_mm2),
        nuclear_area_um2=float(a.mean()) if len(a) else 0.0,
        nuclear_area_p10_um2=float(np.percentile(a, 10)) if len(a) else 0.0,
        nuclear_area_p90_um2=float(np.percentile(a, 90)) if len(a) else 0.0,
        area_cv=_cv(a), eccentricity=float(ecc.mean()) if len(ecc) else 0.0,
        eccentricity_cv=_cv(ecc), chromatin_darkness=float(dark.mean()) if len(dark) else 0.0,
        nc_fraction=n.px / max(tissue_px, 1),
        debris=int(n.is_debris.sum()), debris_per_mm2=float(n.is_debris.sum() / tissue_mm2),
        spindle_fraction=float((ecc >= SPINDLE_ECC).sum() / nn), lymphoid_fraction=float(n.lymphoid.sum() / nn),
        large_fraction=float(n.large.sum() / nn))


def measure_patch(rgb: np.ndarray, mpp: float, nucleus_min_area_um2: float = 6.0,
                  lumen_min_area_um2: float = 150.0) -> Measurements:
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an RGB image, got shape {rgb.shape}")
    if not mpp or mpp <= 0:
        raise ValueError(f"mpp must be > 0 µm/px, got {mpp!r}")
    rgb = np.ascontiguousarray(rgb[..., :3])
    h, w = rgb.shape[:2]
    px_um2 = mpp * mpp
    img = rgb.astype(np.float32) / 255.0
    grey = img.mean(axis=2)
    white, tissue = _white_and_tissue(img, grey, px_um2)
    tissue_px = int(tissue.sum())
    tissue_mm2 = max(tissue_px * px_um2 / 1e6, 1e-9)

    hed = color.rgb2hed(rgb)
    hema, eosin = hed[..., 0], hed[..., 1]
    nuc = _nuclei(segment_nuclei(hema, tissue, mpp)[0], grey, px_um2, nucleus_min_area_um2)
    stroma_bg = tissue & ~nuc.mask
    bg_px = max(int(stroma_bg.sum()), 1)
    blocks = _block_map(h, w, mpp, white, stroma_bg & (hema > H_CYTO), nuc.cy, nuc.cx, nuc.is_nuc,
                        nuc.is_debris, nuc.lymphoid, nuc.large)
    return Measurements(
        mpp=float(mpp), field_um=float(max(h, w) * mpp),
        tissue_fraction=tissue_px / (h * w), white_fraction=float(white.mean()),
        eosin_fraction=float((stroma_bg & (eosin > E_POS)).sum() / max(tissue_px, 1)),
        hema_fraction=float((stroma_bg & (hema > H_CYTO)).sum() / bg_px),
        **_white_spaces(white, px_um2, lumen_min_area_um2), **_nuclear_stats(nuc, tissue_px, tissue_mm2),
        **blocks,
    )


def _block_map(h, w, mpp, white, basophilic, cy, cx, is_nuc, is_debris, lymphoid, large) -> dict:
    """Share of BLOCK_UM blocks dominated by white space, small round nuclei (lymphoid),
    enlarged nuclei / basophilic cytoplasm (epithelial), debris, or neither (fibrous)."""
    b = max(8, int(round(BLOCK_UM / mpp)))
    ny, nx = max(1, h // b), max(1, w // b)
    bpx = (h // ny) * (w // nx)

    def grid_mean(mask):
        return cv2.resize(mask.astype(np.float32), (nx, ny), interpolation=cv2.INTER_AREA)

    def grid_count(sel):
        yi = np.minimum((cy[sel] * ny / h).astype(int), ny - 1)
        xi = np.minimum((cx[sel] * nx / w).astype(int), nx - 1)
        return np.bincount(yi * nx + xi, minlength=ny * nx).reshape(ny, nx)

    block_um2 = bpx * mpp * mpp
    per_1000 = 1000.0 / block_um2  # counts -> per 1000 µm² (a 32 µm block is ~1000 µm²)
    wf = grid_mean(white)
    baso = grid_mean(basophilic)
    nuc = grid_count(is_nuc) * per_1000
    lym = grid_count(_sub(is_nuc, lymphoid)) * per_1000
    lrg = grid_count(_sub(is_nuc, large)) * per_1000
    deb = grid_count(is_debris) * per_1000
    kind = np.full((ny, nx), 4)  # fibrous
    # per 1000 µm²: a lymphocyte sheet holds ~10-20 nuclei, carcinoma a few enlarged ones
    kind[(lrg >= 2) | ((baso >= 0.35) & (nuc >= 4))] = 2  # epithelial
    kind[(lym >= 6) & (lym >= 0.5 * nuc)] = 1              # lymphoid
    kind[(deb >= 3) & (lym < 3) & (lrg < 1)] = 3           # debris
    kind[wf >= 0.6] = 0                                     # white
    share = np.bincount(kind.ravel(), minlength=5) / kind.size
    return dict(block_white=float(share[0]), block_lymphoid=float(share[1]),
                block_epithelial=float(share[2]), block_debris=float(share[3]),
                block_fibrous=float(share[4]))


def _sub(parent: np.ndarray, child: np.ndarray) -> np.ndarray:
    """Object-level mask: `child` is indexed over parent's True entries; expand to all objects."""
    out = np.zeros_like(parent)
    out[parent] = child
    return out
