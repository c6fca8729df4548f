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
from ..items import PatchItem, Reply
from ..morphometry import Measurements, measure_patch
from .base import Backend

LABEL = "measurement-based baseline, not a language model"
DEFAULT_MPP = 0.5


@dataclass(frozen=True)
class Call:
    tissue: str      # one of TISSUE_TEXT's keys
    density: str     # dense | moderate | sparse
    size: str        # enlarged | medium | small
    pleomorphic: bool
    hyperchromatic: bool


TISSUE_TEXT = {
    "background": "mostly background with little tissue",
    "adipose": "adipose tissue composed of large clear fat vacuoles separated by thin septa",
    "necrosis": "necrosis-like tissue with fragmented nuclear debris in a pale eosinophilic background",
    "lymphoid": "a dense lymphoid infiltrate of small round uniform nuclei",
    "tumour": "tumour-like epithelium with crowded, enlarged, irregular nuclei",
    "glandular": "glandular epithelium with lumina lined by fairly uniform nuclei",
    "cellular": "cellular tissue with closely packed nuclei",
    "stroma": "fibrous stroma with sparse spindle-shaped nuclei",
    "mixed": "mixed tissue of moderate cellularity",
}


def classify(m: Measurements, t) -> Call:
    """Tissue call from measurements; ``t`` = MorphometricConfig thresholds."""
    density = ("dense" if m.nuclei_per_mm2 >= t.dense_nuclei_per_mm2 else
               "sparse" if m.nuclei_per_mm2 <= t.sparse_nuclei_per_mm2 else "moderate")
    size = ("enlarged" if m.nuclear_area_um2 >= t.large_nucleus_um2 else
            "small" if m.nuclear_area_um2 <= t.small_nucleus_um2 else "medium")
    pleo = m.nuclei >= 5 and m.area_cv >= t.pleomorphism_cv
    hyper = m.nuclei >= 3 and m.chromatin_darkness >= 0.62
    if m.tissue_fraction < 0.15 and m.lumen_fraction < 0.2:
        tissue = "background"
    elif m.lumen_fraction >= t.adipose_white_fraction and m.lumina >= 2 and density != "dense":
        tissue = "adipose"
    elif m.debris_per_mm2 >= t.debris_per_mm2 and m.debris > m.nuclei:
        tissue = "necrosis"
    elif density == "dense" and size == "small" and m.eccentricity < 0.7:
        tissue = "lymphoid"
    elif density == "dense" and (size == "enlarged" or pleo):
        tissue = "tumour"
    elif m.lumina >= 1 and density != "sparse":
        tissue = "glandular"
    elif density == "dense":
        tissue = "cellular"
    elif density == "sparse" and m.eosin_fraction >= 0.5:
        tissue = "stroma"
    else:
        tissue = "mixed"
    return Call(tissue, density, size, pleo, hyper)


def describe_measurements(m: Measurements, t) -> str:
    c = classify(m, t)
    s = [f"This {m.field_um:.0f} µm field shows {TISSUE_TEXT[c.tissue]}."]
    if c.tissue != "background":
        s.append(f"Nuclear density is {'high' if c.density == 'dense' else 'low' if c.density == 'sparse' else 'moderate'} "
                 f"({m.nuclei_per_mm2:,.0f} nuclei per mm² of tissue, {m.nuclei} counted).")
    if m.nuclei >= 3:
        size_txt = {"enlarged": "Nuclei are enlarged", "small": "Nuclei are small",
                    "medium": "Nuclei are of medium size"}[c.size]
        s.append(f"{size_txt}, averaging {m.nuclear_area_um2:.0f} µm² "
                 f"(10th-90th percentile {m.nuclear_area_p10_um2:.0f}-{m.nuclear_area_p90_um2:.0f} µm²).")
        s.append("Nuclear size varies markedly, consistent with pleomorphism "
                 f"(coefficient of variation {m.area_cv:.2f})." if c.pleomorphic else
                 f"Nuclei are fairly uniform in size (coefficient of variation {m.area_cv:.2f}).")
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
            s.append(f"There are {m.lumina} clear spaces enclosed by tissue (lumina or vacuoles), "
                     f"covering {100 * m.lumen_fraction:.0f}% of the field.")
        else:
            s.append("No lumina or vacuoles are seen.")
        s.append("Numerous small dark fragments suggest necrosis-like nuclear debris "
                 f"({m.debris_per_mm2:,.0f} per mm²)." if c.tissue == "necrosis"
                 else "No necrosis-like debris is seen.")
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
        (rx(r"necro|nuclear debris|karyorrhe"),
         lambda m, t, neg: (m.debris_per_mm2 >= t.debris_per_mm2 and m.debris > m.nuclei) if neg
         else m.debris_per_mm2 < 0.3 * t.debris_per_mm2),
        (rx(r"\b(adipo\w*|fat|fatty|lipid vacuoles)\b"),
         lambda m, t, neg: (m.lumen_fraction >= t.adipose_white_fraction) if neg
         else m.lumen_fraction < 0.15),
        (rx(r"\b(lymphoid|lymphocyt\w*)\b"),
         lambda m, t, neg: (not neg) and (m.nuclei_per_mm2 < t.sparse_nuclei_per_mm2 or
                                          m.nuclear_area_um2 > t.large_nucleus_um2)),
        (rx(r"\b(gland\w*|lumen|lumina|acin\w*|vacuol\w*)\b"),
         lambda m, t, neg: (m.lumina >= 2) if neg else m.lumina == 0),
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
    model = "morphometric-v1"

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

    async def describe(self, item: PatchItem, prompt: str) -> Reply:
        t0 = time.perf_counter()
        m = await asyncio.to_thread(self.measure, item)
        return Reply(describe_measurements(m, self.t), 1, time.perf_counter() - t0)

    async def revise(self, item: PatchItem, description: str, prompt: str) -> Reply:
        t0 = time.perf_counter()
        m = await asyncio.to_thread(self.measure, item)
        return Reply(revise_against(description, m, self.t), 1, time.perf_counter() - t0)

    async def summarize(self, description: str, prompt: str, budget: TokenBudget) -> Reply:
        return Reply(summarize_text(description, budget))
