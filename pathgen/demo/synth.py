"""Procedurally drawn H&E-like whole-slide images with exact ground truth.

The image is built in optical-density space (Beer-Lambert): each pixel holds a haematoxylin
and an eosin concentration, and RGB = 255 * 10^-(H*h_vec + E*e_vec + glass). With the
Ruifrok & Johnston stain vectors this makes colour deconvolution (skimage.color.rgb2hed,
Macenko, ...) recover the drawn stains, as it would on a real slide.

Layout: a label map at 1/LR of level 0 (background 0, then the classes of
:mod:`pathgen.demo.classes`) holds 1-3 irregular tissue pieces and noise-warped regions of
stroma, tumour (with necrosis), lymphoid aggregates, adipose and benign glands. The label map
is both what is rendered and what is exported as GeoJSON, so the ground truth is exact (to LR px).
Sizes are in µm and converted with the slide's mpp, so a slide at another mpp shows the same
anatomy at another resolution. Everything derives from one integer seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .classes import CLASS_INDEX, TISSUE_CLASSES

LR = 4  # label map is 1/LR of level 0
# Ruifrok & Johnston (2001) OD vectors for haematoxylin and eosin (rows normalised).
H_VEC = np.array([0.650, 0.704, 0.286], np.float32)
E_VEC = np.array([0.072, 0.990, 0.105], np.float32)
GLASS_OD = 0.012

STROMA, TUMOR, LYMPH, ADIPOSE, NECROSIS, BENIGN = (CLASS_INDEX[c] for c in (
    "stroma", "tumor", "lymphocytes", "adipose", "necrosis", "benign"))


@dataclass
class SynthSlide:
    image: np.ndarray  # (H, W, 3) uint8 RGB, level 0
    labels: np.ndarray  # (H // LR, W // LR) uint8 class map (0 = background)
    label: str  # "tumor" | "normal"
    mpp: float
    meta: dict = field(default_factory=dict)


def slide_rng(seed: int, index: int) -> np.random.Generator:
    """Independent stream per slide: slide i is the same whatever else is generated."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x5EED]))


# -- noise -----------------------------------------------------------------------------------
def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Band-limited noise (about unit std) with feature size `scale` px: bicubic-upsampled grid."""
    h, w = shape
    scale = max(scale, 1.0)
    gh, gw = int(math.ceil(h / scale)) + 3, int(math.ceil(w / scale)) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (int(gw * scale), int(gh * scale)), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(rng.integers(0, max(1, int(scale)))), int(rng.integers(0, max(1, int(scale))))
    out = big[oy:oy + h, ox:ox + w]
    sd = out[::7, ::7].std() if out.size > 1 else 1.0  # subsampled: the std is all we need
    out *= np.float32(1.0 / (sd + 1e-6))
    return out


# -- layout (label map) ----------------------------------------------------------------------
def _blob(shape, cx, cy, rx, ry, angle, rng, rough=0.25, scale=None) -> np.ndarray:
    """Boolean mask of a noise-warped ellipse (irregular border) in label-map px."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ca, sa = math.cos(angle), math.sin(angle)
    u = ((xx - cx) * ca + (yy - cy) * sa) / max(rx, 1)
    v = (-(xx - cx) * sa + (yy - cy) * ca) / max(ry, 1)
    r = np.sqrt(u * u + v * v)
    s = scale or max(4.0, 0.35 * min(rx, ry))
    r += rough * smooth_noise(rng, shape, s) + 0.35 * rough * smooth_noise(rng, shape, s / 4)
    return r < 1.0


def _pick_point(mask: np.ndarray, rng, margin_mask=None):
    ys, xs = np.nonzero(mask if margin_mask is None else (mask & margin_mask))
    if len(xs) == 0:
        ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    i = int(rng.integers(len(xs)))
    return float(xs[i]), float(ys[i])


def make_layout(rng: np.random.Generator, width: int, height: int, mpp: float, tumor: bool) -> np.ndarray:
    """Label map (height // LR, width // LR) uint8."""
    h, w = height // LR, width // LR
    um = 1.0 / (mpp * LR)  # label-map px per µm
    lab = np.zeros((h, w), np.uint8)
    # 1-3 tissue pieces side by side, each an irregular ellipse.
    n_pieces = int(rng.choice([1, 1, 2, 3]))
    col_w = w / n_pieces
    tissue = np.zeros((h, w), bool)
    for k in range(n_pieces):
        cx = col_w * (k + 0.5) + rng.uniform(-0.05, 0.05) * col_w
        cy = h * rng.uniform(0.45, 0.55)
        rx = col_w * rng.uniform(0.40, 0.47)
        ry = h * rng.uniform(0.38, 0.45)
        if n_pieces > 1:
            ry *= rng.uniform(0.8, 1.0)
        tissue |= _blob((h, w), cx, cy, rx, ry, rng.uniform(-0.3, 0.3), rng, rough=0.22)
    tissue = cv2.morphologyEx(tissue.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n_cc, cc, stats, _ = cv2.connectedComponentsWithStats(tissue, connectivity=8)
    big = np.zeros(n_cc, bool)
    big[1:] = stats[1:, cv2.CC_STAT_AREA] >= 0.004 * h * w  # drop crumbs
    tissue = big[cc]
    lab[tissue] = STROMA
    inner = cv2.erode(tissue.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0

    def paint(cls, n, r_um, where=None, rough=0.3, near_edge=False):
        base = tissue if where is None else where
        edge = (tissue & ~inner) if near_edge else inner
        for _ in range(n):
            p = _pick_point(base, rng, edge)
            if p is None:
                return
            r = rng.uniform(*r_um) * um
            m = _blob((h, w), p[0], p[1], r * rng.uniform(0.8, 1.25), r * rng.uniform(0.8, 1.25),
                      rng.uniform(0, math.pi), rng, rough=rough) & base
            lab[m] = cls

    paint(ADIPOSE, int(rng.integers(0, 3)), (300, 550), near_edge=True)
    paint(BENIGN, int(rng.integers(1, 3)) if not tumor else int(rng.integers(0, 2)), (300, 550))
    if tumor:
        paint(TUMOR, int(rng.integers(1, 3)), (400, 700), rough=0.35)
        if rng.random() < 0.7:  # comedo-type necrosis in the middle of a tumour mass
            paint(NECROSIS, 1, (250, 380), where=(lab == TUMOR), rough=0.25)
    paint(LYMPH, int(rng.integers(1, 4)), (130, 280), rough=0.2)
    lab[~tissue] = 0
    return lab


# -- drawing helpers -------------------------------------------------------------------------
def _jittered_points(rng, x0, y0, x1, y1, spacing, jitter=0.45):
    """Roughly even points (blue-noise-like) in a box: a grid with random jitter."""
    xs = np.arange(x0 + spacing / 2, x1, spacing)
    ys = np.arange(y0 + spacing / 2, y1, spacing)
    if len(xs) == 0 or len(ys) == 0:
        return np.zeros((0, 2), np.float32)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    pts += rng.uniform(-jitter, jitter, pts.shape) * spacing
    return pts.astype(np.float32)


def _inside(mask_full: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h, w = mask_full.shape
    xi = np.clip(pts[:, 0].astype(int), 0, w - 1)
    yi = np.clip(pts[:, 1].astype(int), 0, h - 1)
    return mask_full[yi, xi]


def _ellipses(layer, pts, ax_a, ax_b, angles, values):
    for (x, y), a, b, ang, v in zip(pts, ax_a, ax_b, angles, values):
        cv2.ellipse(layer, (int(x), int(y)), (max(1, int(round(a))), max(1, int(round(b)))),
                    float(ang), 0, 360, float(v), -1, cv2.LINE_AA)


def _irregular_polygon(rng, cx, cy, r, n=16, rough=0.2):
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    rad = r * (1 + rough * rng.standard_normal(n)).clip(0.55, 1.6)
    return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)


def _bbox(mask):
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return None if w == 0 else (x, y, x + w, y + h)


# -- renderer --------------------------------------------------------------------------------
class _Canvas:
    def __init__(self, rng, lab, width, height, mpp):
        self.rng, self.mpp = rng, mpp
        self.W, self.H = width, height
        self.u = 1.0 / mpp  # px per µm
        full = cv2.resize(lab, (width, height), interpolation=cv2.INTER_NEAREST)
        self.cls = cv2.medianBlur(full, 5) if LR > 1 else full  # round off the LR-px staircase
        self.Hc = np.zeros((height, width), np.float32)
        self.Ec = np.zeros((height, width), np.float32)
        self.nuc = np.zeros((height, width), np.float32)  # nuclear haematoxylin, composited last

    def mask(self, c):
        return self.cls == c

    def noise(self, scale_um):
        return smooth_noise(self.rng, (self.H, self.W), scale_um * self.u)

    def nuclei(self, pts, a_um, b_um, angles, values):
        _ellipses(self.nuc, pts, np.asarray(a_um) * self.u, np.asarray(b_um) * self.u, angles, values)

    def points_in(self, c_mask, spacing_um, jitter=0.45):
        bb = _bbox(c_mask)
        if bb is None:
            return np.zeros((0, 2), np.float32)
        pts = _jittered_points(self.rng, *bb, spacing_um * self.u, jitter)
        pts[:, 0] = pts[:, 0].clip(0, self.W - 1)
        pts[:, 1] = pts[:, 1].clip(0, self.H - 1)
        return pts[_inside(c_mask, pts)]


def _render_stroma(cv: _Canvas, tissue):
    rng, u = cv.rng, cv.u
    # Collagen: white noise smeared along a few orientations (oriented line kernels), blended
    # by a smooth orientation field, then domain-warped so the bundles wave. Half resolution.
    h2, w2 = (cv.H + 1) // 2, (cv.W + 1) // 2
    u2 = u / 2
    theta = smooth_noise(rng, (h2, w2), 120 * u2) * 0.8 + rng.uniform(0, math.pi)
    white = rng.standard_normal((h2, w2), dtype=np.float32)
    L = max(5, int(24 * u2) | 1)
    f = np.zeros((h2, w2), np.float32)
    wsum = np.zeros((h2, w2), np.float32)
    for k in range(4):
        a = k * math.pi / 4
        ker = np.zeros((L, L), np.float32)
        c = L // 2
        cv2.line(ker, (int(c - c * math.cos(a)), int(c - c * math.sin(a))),
                 (int(c + c * math.cos(a)), int(c + c * math.sin(a))), 1.0, 1)
        ker /= ker.sum()
        wk = np.cos(theta - a) ** 8  # soft orientation bin
        f += wk * cv2.filter2D(white, -1, ker)
        wsum += wk
    f /= wsum + 1e-6
    f /= f[::5, ::5].std() + 1e-6
    gy, gx = np.mgrid[0:h2, 0:w2].astype(np.float32)
    amp = 4 * u2
    f = cv2.remap(f, gx + amp * smooth_noise(rng, (h2, w2), 30 * u2),
                  gy + amp * smooth_noise(rng, (h2, w2), 30 * u2), cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REFLECT)
    E = 0.26 + 0.09 * np.tanh(1.5 * f) + 0.04 * smooth_noise(rng, (h2, w2), 25 * u2)
    E[f < -1.3] *= 0.4  # clefts between collagen bundles
    E = cv2.resize(E, (cv.W, cv.H), interpolation=cv2.INTER_LINEAR)
    np.clip(E, 0.03, 0.8, out=E)
    theta = cv2.resize(theta, (cv.W, cv.H), interpolation=cv2.INTER_NEAREST)
    np.copyto(cv.Ec, E, where=tissue)
    np.copyto(cv.Hc, np.float32(0.03), where=tissue)
    # sparse spindle fibroblast nuclei aligned with the fibres
    m = cv.mask(STROMA) | cv.mask(TUMOR) | cv.mask(BENIGN)
    pts = cv.points_in(m, 38.0, 0.5)
    ang = np.degrees(theta[pts[:, 1].astype(int), pts[:, 0].astype(int)]) if len(pts) else []
    n = len(pts)
    cv.nuclei(pts, rng.uniform(5, 8, n), rng.uniform(1.2, 2.0, n), ang, rng.uniform(0.55, 0.75, n))
    return theta


def _set(dst, value, where):
    """dst[where] = value for a scalar or a full-size array (faster than boolean indexing)."""
    np.copyto(dst, value if np.ndim(value) else np.float32(value), where=where)


def _glands(cv: _Canvas, region, spacing_um, r_um, rough, lumen_scale, solid_frac):
    """Draw gland/nest epithelium into masks; return (epi, lumen, list of (cx, cy, r, poly))."""
    rng, u = cv.rng, cv.u
    epi = np.zeros((cv.H, cv.W), np.uint8)
    lumen = np.zeros((cv.H, cv.W), np.uint8)
    glands = []
    for cx, cy in cv.points_in(region, spacing_um, 0.3):
        r = rng.uniform(*r_um) * u
        poly = _irregular_polygon(rng, cx, cy, r, 18, rough)
        cv2.fillPoly(epi, [poly.astype(np.int32)], 1, cv2.LINE_AA)
        if rng.random() >= solid_frac:
            s = rng.uniform(*lumen_scale)
            lp = (poly - [cx, cy]) * s * (1 + 0.1 * rng.standard_normal((len(poly), 1))) + [cx, cy]
            cv2.fillPoly(lumen, [lp.astype(np.int32)], 1, cv2.LINE_AA)
        glands.append((cx, cy, r, poly))
    epi = (epi > 0) & region
    lumen = (lumen > 0) & epi
    _set(cv.nuc, 0.0, epi)  # stromal nuclei drawn earlier do not belong inside glands
    return epi, lumen, glands


def _render_tumor(cv: _Canvas):
    rng = cv.rng
    region = cv.mask(TUMOR)
    if not region.any():
        return
    epi, lumen, _ = _glands(cv, region, 95, (40, 75), 0.28, (0.3, 0.55), 0.4)
    cyto = epi & ~lumen
    _set(cv.Ec, 0.2 + 0.05 * cv.noise(12), cyto)
    _set(cv.Hc, 0.12, cyto)  # amphophilic (purple-pink) cytoplasm
    _set(cv.Ec, 0.05, lumen)
    _set(cv.Hc, 0.01, lumen)
    pts = cv.points_in(cyto, 10.0, 0.45)  # crowded, some overlapping
    n = len(pts)
    a = rng.lognormal(math.log(4.3), 0.25, n).clip(3.0, 9)  # pleomorphic, 6-18 µm
    b = a * rng.uniform(0.6, 1.0, n)
    cv.nuclei(pts, a, b, rng.uniform(0, 180, n), rng.uniform(0.75, 1.05, n))
    k = rng.random(n) < 0.25  # prominent nucleoli
    _ellipses(cv.nuc, pts[k], np.full(k.sum(), 1.1 * cv.u), np.full(k.sum(), 1.0 * cv.u),
              np.zeros(k.sum()), np.full(k.sum(), 1.5))
    m = rng.random(n) < 0.015  # mitotic figures: dark irregular clumps
    for x, y in pts[m]:
        blob = _irregular_polygon(rng, x, y, 3.5 * cv.u, 9, 0.45).astype(np.int32)
        cv2.fillPoly(cv.nuc, [blob], 1.6, cv2.LINE_AA)


def _render_benign(cv: _Canvas):
    rng, u = cv.rng, cv.u
    region = cv.mask(BENIGN)
    if not region.any():
        return
    epi, lumen, glands = _glands(cv, region, 150, (38, 52), 0.07, (0.55, 0.65), 0.0)
    cyto = epi & ~lumen
    _set(cv.Ec, 0.14 + 0.03 * cv.noise(10), cyto)
    _set(cv.Hc, 0.04, cyto)
    _set(cv.Ec, 0.04, lumen)
    _set(cv.Hc, 0.0, lumen)
    pts, ang = [], []
    for cx, cy, r, _poly in glands:  # a single basal row of small uniform nuclei
        n = max(8, int(2 * math.pi * r * 0.82 / (6.5 * u)))
        t = np.linspace(0, 2 * math.pi, n, endpoint=False) + rng.uniform(0, 1)
        rr = r * 0.82 * (1 + 0.03 * rng.standard_normal(n))
        pts.append(np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], 1))
        ang.append(np.degrees(t))
    if pts:
        pts, ang = np.concatenate(pts), np.concatenate(ang)
        keep = _inside(cyto, pts)
        pts, ang = pts[keep], ang[keep]
        n = len(pts)
        cv.nuclei(pts, rng.uniform(3.6, 4.2, n), rng.uniform(2.0, 2.4, n), ang, rng.uniform(0.6, 0.7, n))


def _render_lymph(cv: _Canvas):
    rng = cv.rng
    region = cv.mask(LYMPH)
    if not region.any():
        return
    _set(cv.Ec, 0.1 + 0.03 * cv.noise(15), region)
    _set(cv.Hc, 0.06, region)
    pts = cv.points_in(region, 7.2, 0.4)
    n = len(pts)
    r = rng.uniform(2.8, 3.5, n)
    cv.nuclei(pts, r, r * rng.uniform(0.85, 1.0, n), rng.uniform(0, 180, n), rng.uniform(0.95, 1.15, n))


def _render_adipose(cv: _Canvas):
    rng, u = cv.rng, cv.u
    region = cv.mask(ADIPOSE)
    bb = _bbox(region)
    if bb is None:
        return
    x0, y0, x1, y1 = bb
    sub = region[y0:y1, x0:x1]
    seeds = _jittered_points(rng, 0, 0, x1 - x0, y1 - y0, 80 * u, 0.35)
    img = np.full(sub.shape, 255, np.uint8)
    img[seeds[:, 1].astype(int).clip(0, sub.shape[0] - 1), seeds[:, 0].astype(int).clip(0, sub.shape[1] - 1)] = 0
    _, cells = cv2.distanceTransformWithLabels(img, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    edge = np.zeros(sub.shape, bool)
    edge[:, 1:] |= cells[:, 1:] != cells[:, :-1]
    edge[1:, :] |= cells[1:, :] != cells[:-1, :]
    edge = cv2.dilate(edge.astype(np.uint8), np.ones((max(2, int(1.5 * u)),) * 2, np.uint8)) > 0
    E = np.where(edge, 0.35, 0.0).astype(np.float32)
    Hs = np.where(edge, 0.04, 0.0).astype(np.float32)
    cv.Ec[y0:y1, x0:x1][sub] = E[sub]
    cv.Hc[y0:y1, x0:x1][sub] = Hs[sub]
    ys, xs = np.nonzero(edge & sub)  # occasional flattened nuclei on the membranes
    if len(xs):
        k = rng.choice(len(xs), size=min(len(xs), max(1, len(seeds) // 6)), replace=False)
        pts = np.stack([xs[k] + x0, ys[k] + y0], 1).astype(np.float32)
        n = len(pts)
        cv.nuclei(pts, rng.uniform(4, 6, n), np.full(n, 1.1), rng.uniform(0, 180, n), np.full(n, 0.6))


def _render_necrosis(cv: _Canvas):
    rng = cv.rng
    region = cv.mask(NECROSIS)
    if not region.any():
        return
    _set(cv.nuc, 0.0, region)  # no intact nuclei survive
    _set(cv.Ec, (0.3 + 0.07 * cv.noise(60) + 0.03 * cv.noise(6)).clip(0.08, 0.6), region)
    _set(cv.Hc, (0.06 + 0.03 * cv.noise(40)).clip(0.01, 0.2), region)
    # karyorrhectic debris: clustered small dark fragments
    dens = cv.noise(50)
    pts = cv.points_in(region, 6.0, 0.5)
    if len(pts):
        pts = pts[dens[pts[:, 1].astype(int), pts[:, 0].astype(int)] > -0.2]
        n = len(pts)
        a = rng.uniform(0.6, 1.8, n)
        cv.nuclei(pts, a, a * rng.uniform(0.5, 1.0, n), rng.uniform(0, 180, n), rng.uniform(0.8, 1.2, n))


def _stain_vectors(rng):
    """Per-slide stain variation (different labs/batches): small rotations and strengths."""
    h = H_VEC + rng.normal(0, 0.03, 3).astype(np.float32)
    e = E_VEC + rng.normal(0, 0.03, 3).astype(np.float32)
    h, e = h.clip(0.05) / np.linalg.norm(h.clip(0.05)), e.clip(0.02) / np.linalg.norm(e.clip(0.02))
    return h, e, float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.85, 1.15))


def render(rng: np.random.Generator, lab: np.ndarray, width: int, height: int, mpp: float) -> np.ndarray:
    cv = _Canvas(rng, lab, width, height, mpp)
    tissue = cv.cls > 0
    _render_stroma(cv, tissue)
    _render_benign(cv)
    _render_tumor(cv)
    _render_lymph(cv)
    _render_adipose(cv)
    _render_necrosis(cv)
    # chromatin texture, then nuclei over the cytoplasm (nuclei displace eosin)
    nuc = cv.nuc * (0.85 + 0.12 * cv.noise(1.2)).clip(0.6, 1.2)
    nuc[~tissue] = 0
    cv.Ec *= 1 - 0.7 * np.clip(nuc, 0, 1)
    Hc = np.maximum(cv.Hc, nuc)
    del nuc
    # optics: slight blur; stains to RGB by Beer-Lambert
    sig = 0.35 * cv.u
    Hc = cv2.GaussianBlur(Hc, (0, 0), sig)
    Ec = cv2.GaussianBlur(cv.Ec, (0, 0), sig)
    hv, ev, hs, es = _stain_vectors(rng)
    Hc *= hs
    Ec *= es
    out = np.empty((height, width, 3), np.uint8)
    grain = (rng.standard_normal((height, width), dtype=np.float32) * 1.2 + 0.5)
    ln10 = np.float32(-math.log(10))
    for ch in range(3):
        od = Hc * np.float32(hv[ch] * ln10)
        od += Ec * np.float32(ev[ch] * ln10)
        od += np.float32(GLASS_OD * ln10)
        val = cv2.exp(od)
        val *= 255.0
        val += grain
        out[..., ch] = val.clip(0, 255).astype(np.uint8)  # +0.5 above rounds
    return out


def generate_slide(seed: int, index: int, tumor: bool, width: int = 4096, height: int = 3072,
                   mpp: float = 0.5) -> SynthSlide:
    """Draw demo slide `index` for the demo `seed`; `tumor` says whether it carries tumour."""
    rng = slide_rng(seed, index)
    lab = make_layout(rng, width, height, mpp, tumor)
    if tumor and not (lab == TUMOR).any():  # tiny slides: force a tumour focus in the tissue
        tissue = lab > 0
        ys, xs = np.nonzero(tissue)
        if len(xs):
            i = len(xs) // 2
            cv2.circle(lab, (int(xs[i]), int(ys[i])), max(2, min(lab.shape) // 6), TUMOR, -1)
            lab[~tissue] = 0
    image = render(rng, lab, width, height, mpp)
    areas = {c.code: float((lab == CLASS_INDEX[c.code]).mean()) for c in TISSUE_CLASSES}
    return SynthSlide(image, lab, "tumor" if (lab == TUMOR).any() else "normal", mpp,
                      {"seed": seed, "index": index, "class_fractions": areas})
