"""Morphometric backend: a measurement-based baseline, not a language model.

describe  = sentences generated from measurements (pathgen.captioning.morphometry);
revise    = re-check every sentence of any description against the measurements and drop
            the ones they contradict (works on text from other backends too);
summarize = the revised sentences without their numbers, cut to the token budget.
Offline and deterministic: the same patch always gives the same caption.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from ..budget import TokenBudget, split_sentences
from ..items import AgentError, PatchItem, Reply
from ..morphometry import Measurements, measure_patch
from .base import Backend
from ...config.captioning import MORPHOMETRIC_MODEL_ID

LABEL = "measurement-based baseline, not a language model"
DEFAULT_MPP = 0.5


@dataclass(frozen=True)
class TissueThresholds:
    """Tissue-call table (physical units). Calibrated on pure ground-truth patches of the demo
    CAPTION slides at 128 and 256 µm (bench/morphometric_calibration.py, docs/captioning.md);
    no ground truth is used at inference. Density is per mm² of tissue at the patch mpp."""

    background_max_tissue: float = 0.25      # tissue share of the field below this = glass
    adipose_min_white: float = 0.5           # fat: mostly white ...
    adipose_min_compartments: int = 2        # ... in >= 2 vacuoles (glass is one white area)
    necrosis_min_debris_per_mm2: float = 2000.0  # karyorrhectic fragments (< nucleus size)
    necrosis_max_nuclear_area_um2: float = 20.0  # ... and no intact nuclei of normal size
    lymph_min_nuclei_per_mm2: float = 8500.0     # lymphocyte sheet: very dense ...
    lymph_min_small_round: float = 0.5           # ... mostly small round nuclei
    tumor_min_nuclei_per_mm2: float = 2500.0     # carcinoma: crowded ...
    tumor_min_large_fraction: float = 0.25       # ... with many enlarged nuclei
    tumor_min_mean_area_um2: float = 45.0        # (or a large mean nuclear area)
    benign_min_nc: float = 0.035             # glandular epithelium: nuclear/tissue area ratio,
    benign_min_nuclei_per_mm2: float = 1400.0  # ... density above collagen's sparse fibroblasts
    benign_min_white: float = 0.01           # ... and a lumen (clear space) in the field,
    benign_max_spindle: float = 0.35         # or, lumen out of view: nuclei mostly not spindle
    benign_min_nc_no_lumen: float = 0.04     # ... and a higher nuclear/tissue area ratio
    benign_max_lymphoid_blocks: float = 0.2  # extra nuclei from a lymphocyte sheet are not glands
    secondary_min_share: float = 0.3         # a second component named when it covers >= this


CALIBRATION = TissueThresholds()


@dataclass(frozen=True)
class Call:
    tissue: str      # one of TISSUE_TEXT's keys
    density: str     # dense | moderate | sparse
    size: str        # enlarged | medium | small
    pleomorphic: bool
    hyperchromatic: bool
    second: str | None = None  # a second component (TISSUE_TEXT key), mixed fields


# The captions describe what was measured in the captioner's own words: never a zero-shot
# benchmark's class texts ("tumor epithelium", "fibrous stroma", "lymphocytes", "necrosis",
# "benign glandular epithelium", "adipose tissue") nor their prompt-ensemble synonyms, so a
# zero-shot score measures what the CLIP learned from morphology, not string copying
# (tests/test_morphometric_calibration.py, tests/test_e2e_demo.py). American spelling.
TISSUE_TEXT = {
    "background": "mostly empty glass with little tissue",
    "adipose": "large clear lipid vacuoles separated by thin septa",
    "necrosis": "karyorrhectic nuclear debris and ghost cell outlines in a pale eosinophilic background",
    "lymphocytes": "a dense sheet of small round lymphoid cells with closely packed nuclei",
    "tumor": "crowded, enlarged, pleomorphic nuclei of malignant-appearing epithelial cells",
    "benign": "glands with open lumina lined by small uniform nuclei",
    "stroma": "collagen-rich matrix with sparse spindle-shaped nuclei",
}
# Bare terms: used when a qualifier of TISSUE_TEXT is contradicted by the measurements (e.g.
# "sparse" nuclei in a stroma field crossed by lymphoid cells), so the tissue sentence survives
# the revise step.
TISSUE_TERM = {"background": "mostly empty glass", "adipose": "lipid vacuoles",
               "necrosis": "nuclear debris", "lymphocytes": "lymphoid cells",
               "tumor": "malignant-appearing epithelial cells", "benign": "glands",
               "stroma": "collagen-rich matrix"}
# How a second component is named after the dominant one.
SECOND_TEXT = {
    "adipose": "some lipid vacuoles",
    "necrosis": "a focus of nuclear debris",
    "lymphocytes": "a small cluster of lymphoid cells",
    "tumor": "nests of malignant-appearing epithelial cells",
    "stroma": "intervening collagen-rich matrix",
}


def _shares(m: Measurements) -> dict[str, float]:
    """Share of the field per component, from the 32 µm block map."""
    return {"adipose": m.block_white if m.white_compartments >= 2 else 0.0,
            "lymphocytes": m.block_lymphoid, "tumor": m.block_epithelial,
            "necrosis": m.block_debris, "stroma": m.block_fibrous}


def tissue_call(m: Measurements, c: TissueThresholds = CALIBRATION) -> str:
    """Dominant tissue: a decision list, most specific finding first."""
    if m.white_fraction >= c.adipose_min_white and m.white_compartments >= c.adipose_min_compartments:
        return "adipose"
    if m.tissue_fraction < c.background_max_tissue:
        return "background"
    if (m.debris_per_mm2 >= c.necrosis_min_debris_per_mm2
            and m.nuclear_area_um2 < c.necrosis_max_nuclear_area_um2):
        return "necrosis"
    if m.nuclei_per_mm2 >= c.lymph_min_nuclei_per_mm2 and m.lymphoid_fraction >= c.lymph_min_small_round:
        return "lymphocytes"
    if m.nuclei_per_mm2 >= c.tumor_min_nuclei_per_mm2 and (
            m.large_fraction >= c.tumor_min_large_fraction
            or m.nuclear_area_um2 >= c.tumor_min_mean_area_um2):
        return "tumor"
    if (m.nuclei_per_mm2 >= c.benign_min_nuclei_per_mm2
            and m.block_lymphoid < c.benign_max_lymphoid_blocks) and (
            (m.nc_fraction >= c.benign_min_nc and m.white_fraction >= c.benign_min_white)
            or (m.nc_fraction >= c.benign_min_nc_no_lumen and m.spindle_fraction <= c.benign_max_spindle)):
        return "benign"
    return "stroma"


def classify(m: Measurements, t, c: TissueThresholds = CALIBRATION) -> Call:
    """Tissue call from measurements; ``t`` = MorphometricConfig (density/size words)."""
    density = ("dense" if m.nuclei_per_mm2 >= t.dense_nuclei_per_mm2 else
               "sparse" if m.nuclei_per_mm2 <= t.sparse_nuclei_per_mm2 else "moderate")
    size = ("enlarged" if m.nuclear_area_um2 >= t.large_nucleus_um2 else
            "small" if m.nuclear_area_um2 <= t.small_nucleus_um2 else "medium")
    pleo = m.nuclei >= 5 and m.area_cv >= t.pleomorphism_cv
    hyper = m.nuclei >= 3 and m.chromatin_darkness >= 0.62
    tissue = tissue_call(m, c)
    second = None
    if tissue != "background":
        share = {k: v for k, v in _shares(m).items() if k != tissue and supports(k, m, t)}
        best = max(share, key=share.get, default=None)
        if best and share[best] >= c.secondary_min_share:
            second = best
    return Call(tissue, density, size, pleo, hyper, second)


def supports(tissue: str, m: Measurements, t) -> bool:
    """Do the measurements show any evidence of ``tissue``? (revise + second component)."""
    return {
        "adipose": m.white_compartments >= 1 and m.white_fraction >= 0.15,
        "necrosis": m.debris_per_mm2 >= 0.3 * t.debris_per_mm2 or m.block_debris > 0,
        "lymphocytes": m.nuclei >= 3 and (m.lymphoid_fraction >= 0.3 or m.block_lymphoid > 0),
        "tumor": m.nuclei >= 3 and (m.large_fraction >= 0.1 or m.block_epithelial > 0),
        "benign": m.nuclei >= 3 and m.white_fraction > 0,
        "stroma": m.eosin_fraction >= 0.1,
        "background": m.tissue_fraction < 0.5,
    }[tissue]


def describe_measurements(m: Measurements, t) -> str:
    c = classify(m, t)
    tail = f", and {SECOND_TEXT[c.second]}" if c.second else ""
    first = f"This {m.field_um:.0f} µm field shows {TISSUE_TEXT[c.tissue]}{tail}."
    if contradicted(first, m, t):
        first = f"This {m.field_um:.0f} µm field shows {TISSUE_TERM[c.tissue]}{tail}."
    s = [first]
    if c.tissue != "background":
        s.append(f"Nuclear density is {'high' if c.density == 'dense' else 'low' if c.density == 'sparse' else 'moderate'} "
                 f"({m.nuclei_per_mm2:,.0f} nuclei per mm² of tissue, {m.nuclei} counted).")
    if m.nuclei >= 3:
        size_txt = {"enlarged": "Nuclei are enlarged", "small": "Nuclei are small",
                    "medium": "Nuclei are of medium size"}[c.size]
        s.append(f"{size_txt}, averaging {m.nuclear_area_um2:.0f} µm² "
                 f"(10th-90th percentile {m.nuclear_area_p10_um2:.0f}-{m.nuclear_area_p90_um2:.0f} µm²).")
        if c.pleomorphic and c.tissue == "tumor":
            s.append("Nuclear size varies markedly, consistent with pleomorphism "
                     f"(coefficient of variation {m.area_cv:.2f}).")
        elif c.pleomorphic:  # overlapping small nuclei also spread the areas: no pleomorphism claim
            s.append(f"Nuclear size varies (coefficient of variation {m.area_cv:.2f}).")
        else:
            s.append(f"Nuclear size is fairly constant (coefficient of variation {m.area_cv:.2f}).")
        shape = ("elongated, spindle-like" if m.eccentricity >= 0.85 else
                 "oval" if m.eccentricity >= 0.6 else "round")
        s.append(f"Nuclear outlines are mostly {shape} (mean eccentricity {m.eccentricity:.2f}).")
        s.append("The chromatin is dark, in keeping with hyperchromatic nuclei." if c.hyperchromatic
                 else "The chromatin is pale to moderately stained, without marked hyperchromasia.")
    if c.tissue != "background":
        if m.eosin_fraction >= 0.1:
            s.append(f"Eosinophilic stroma or cytoplasm makes up about {100 * m.eosin_fraction:.0f}% "
                     "of the tissue.")
        if m.lumina:
            s.append(f"There {'is 1 clear space' if m.lumina == 1 else f'are {m.lumina} clear spaces'} "
                     f"enclosed by tissue, covering {100 * m.lumen_fraction:.0f}% of the field.")
        elif m.white_fraction < 0.005:
            s.append("No clear spaces are seen.")
        if c.tissue == "necrosis" or c.second == "necrosis":
            s.append(f"Small dark nuclear fragments number about {m.debris_per_mm2:,.0f} per mm².")
        elif not supports("necrosis", m, t):
            s.append("No nuclear debris is seen.")
    return " ".join(s)


# -- revise: claims found in text and whether the measurements contradict them ----------------
_NEG = re.compile(r"\b(no|not|without|absent|absence|lacks?|lacking|none|nor)\b", re.I)
Check = Callable[[Measurements, object, bool], bool]  # (m, thresholds, negated) -> contradicted


def _claims() -> list[tuple[re.Pattern, Check]]:
    def rx(p):
        return re.compile(p, re.I)
    return [
        (rx(r"\b(density is high|high (nuclear )?density|densely|dense(ly)? (packed|cellular)|crowded|hypercellular|"
            r"high cellularity|sheets of)\b"),
         lambda m, t, neg: (m.nuclei_per_mm2 > t.dense_nuclei_per_mm2) if neg
         else m.nuclei_per_mm2 < t.sparse_nuclei_per_mm2),
        (rx(r"\b(density is low|low (nuclear )?density|sparse(ly)?|hypocellular|paucicellular|low cellularity|few nuclei)\b"),
         lambda m, t, neg: (not neg) and m.nuclei_per_mm2 > t.dense_nuclei_per_mm2),
        (rx(r"\b(enlarged|large|nucleomegaly)\b.{0,20}\bnucle|\bnuclei (are )?enlarged"),
         lambda m, t, neg: (not neg) and m.nuclei >= 3 and m.nuclear_area_um2 < t.small_nucleus_um2),
        (rx(r"\bsmall\b.{0,20}\bnucle|\bnuclei are small"),
         lambda m, t, neg: (not neg) and m.nuclei >= 3 and m.nuclear_area_um2 > t.large_nucleus_um2),
        (rx(r"pleomorph|varies markedly|marked(ly)? variation|anisonucleosis"),
         lambda m, t, neg: (m.area_cv >= t.pleomorphism_cv) if neg
         else m.nuclei >= 3 and m.area_cv < 0.6 * t.pleomorphism_cv),
        (rx(r"\b(uniform|monomorphic|monotonous)\b"),
         lambda m, t, neg: (not neg) and m.area_cv > 1.2 * t.pleomorphism_cv),
        (rx(r"hyperchromat"),
         lambda m, t, neg: (not neg) and m.nuclei >= 3 and m.chromatin_darkness < 0.5),
        # tissue-type claims: contradicted when the measurements show no evidence of it at all
        (rx(r"necro|nuclear debris|karyorrhe"),
         lambda m, t, neg: (tissue_call(m) == "necrosis") if neg else not supports("necrosis", m, t)),
        (rx(r"\b(adipo\w*|fat|fatty|lipid vacuoles)\b"),
         lambda m, t, neg: (tissue_call(m) == "adipose") if neg else not supports("adipose", m, t)),
        (rx(r"\b(lymphoid|lymphocyt\w*)\b"),
         lambda m, t, neg: (tissue_call(m) == "lymphocytes") if neg
         else not supports("lymphocytes", m, t)),
        (rx(r"\b(tumou?r\w*|carcinoma\w*|malignan\w*|neoplas\w*)\b"),
         lambda m, t, neg: (tissue_call(m) == "tumor") if neg else not supports("tumor", m, t)),
        (rx(r"\bbenign\b"),
         lambda m, t, neg: (not neg) and not supports("benign", m, t)),
        (rx(r"\b(gland\w*|lumen|lumina|acin\w*|vacuol\w*)\b"),
         lambda m, t, neg: (m.lumina >= 2) if neg else m.white_fraction == 0),
        (rx(r"\b(stroma\w*|collagen\w*|fibrous|eosinophilic)\b"),
         lambda m, t, neg: (not neg) and m.eosin_fraction < 0.1),
    ]


CLAIMS = _claims()


def contradicted(sentence: str, m: Measurements, t) -> bool:
    neg = bool(_NEG.search(sentence))
    return any(p.search(sentence) and check(m, t, neg) for p, check in CLAIMS)


def revise_against(description: str, m: Measurements, t) -> str:
    return " ".join(s for s in split_sentences(description) if not contradicted(s, m, t))


def summarize_text(text: str, budget: TokenBudget) -> str:
    """Drop the numbers in parentheses and the field-size preamble, then fit the budget."""
    text = re.sub(r"\s*\([^)]*\)", "", text)
    text = re.sub(r"^This \d+ µm field shows ", "", text)
    text = text[:1].upper() + text[1:]
    return budget.truncate(text)


class MorphometricBackend(Backend):
    name = "morphometric"
    model = MORPHOMETRIC_MODEL_ID  # v3: calibrated tissue call, own wording (no class texts)

    def __init__(self, cfg, cache_size: int = 512):
        """``cfg``: MorphometricConfig (thresholds)."""
        self.t = cfg
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size

    def measure(self, item: PatchItem) -> Measurements:
        key = str(item.path)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with Image.open(item.path) as im:
            rgb = np.asarray(im.convert("RGB"))
        mpp = item.mpp or DEFAULT_MPP
        if item.size_px and rgb.shape[1] != item.size_px:  # file saved at another size
            mpp = mpp * item.size_px / rgb.shape[1]
        m = measure_patch(rgb, mpp, self.t.nucleus_min_area_um2, self.t.lumen_min_area_um2)
        self._cache[key] = m
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return m

    async def _measured(self, item: PatchItem) -> Measurements:
        """Measurements of one patch; a patch the measurement code cannot handle fails alone
        (AgentError, recorded with its reason), never the slide."""
        try:
            return await asyncio.to_thread(self.measure, item)
        except OSError:  # unreadable image: the pipeline records it as such
            raise
        except Exception as err:
            raise AgentError(f"measuring {item.path} failed ({type(err).__name__}: {err})") from err

    async def describe(self, item: PatchItem, prompt: str) -> Reply:
        t0 = time.perf_counter()
        m = await self._measured(item)
        return Reply(describe_measurements(m, self.t), 1, time.perf_counter() - t0)

    async def revise(self, item: PatchItem, description: str, prompt: str) -> Reply:
        t0 = time.perf_counter()
        m = await self._measured(item)
        return Reply(revise_against(description, m, self.t), 1, time.perf_counter() - t0)

    async def summarize(self, description: str, prompt: str, budget: TokenBudget) -> Reply:
        return Reply(summarize_text(description, budget))
