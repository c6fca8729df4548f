"""Level-0 microns per pixel of a slide, from the most trustworthy source available.

Order (first usable wins): per-slide override (mpp_overrides CSV / sample-sheet mpp / --mpp)
-> ``openslide.mpp-x`` -> vendor keys -> TIFF XResolution + ResolutionUnit -> objective
power (10 / magnification, the usual 40x = 0.25 µm/px convention) -> slides.default_mpp.
Missing mpp is the most common failure of WSI tools, so the final error says how to fix it.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping

from .slide import SlideError

log = logging.getLogger(__name__)

# Values outside this range are metadata junk (e.g. 72 dpi TIFF defaults = 352.8 µm/px).
MPP_PLAUSIBLE = (0.02, 50.0)

# Vendor property -> factor to µm. Philips stores "\"0.000243\" \"0.000243\"" in mm.
VENDOR_KEYS: list[tuple[str, float]] = [
    ("aperio.MPP", 1.0),
    ("openslide.mirax.MPP", 1.0),
    ("mirax.LAYER_0_LEVEL_0_SECTION.MICROMETER_PER_PIXEL_X", 1.0),
    ("hamamatsu.mpp-x", 1.0),
    ("ventana.ScanRes", 1.0),
    ("philips.DICOM_PIXEL_SPACING", 1000.0),
    ("dicom.PixelSpacing", 1000.0),
]
OBJECTIVE_KEYS = ["openslide.objective-power", "aperio.AppMag", "hamamatsu.SourceLens"]
# TIFF ResolutionUnit -> µm per unit (OpenSlide writes the unit as a word).
_UNIT_UM = {"centimeter": 1e4, "cm": 1e4, "3": 1e4, "inch": 25400.0, "2": 25400.0,
            "millimeter": 1e3, "mm": 1e3, "micrometer": 1.0, "um": 1.0}

HOW_TO_FIX = (
    "Provide it in one of these ways: (1) a CSV named by config key slides.mpp_overrides with "
    "header `slide_id,mpp` and one row per slide (e.g. `{slide_id},0.25`); (2) an `mpp` column in "
    "the sample sheet (slides.sample_sheet: slide_id,path,mpp); (3) slides.default_mpp: 0.25 "
    "for every slide without metadata; or (4) `pathgen tile ... --mpp 0.25` for one slide. "
    "Typical values: 40x scans ~0.25, 20x ~0.5 µm/px.")


class MppError(SlideError):
    """No usable microns-per-pixel for a slide."""


def _first_number(text: str) -> float | None:
    m = re.search(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", str(text))
    return float(m.group(0)) if m else None


def _plausible(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and MPP_PLAUSIBLE[0] <= value <= MPP_PLAUSIBLE[1]


def mpp_from_properties(props: Mapping[str, str]) -> tuple[float, str] | None:
    """Metadata part of the order (no override/default): ``(mpp, source)`` or None."""
    candidates: list[tuple[float | None, str]] = []
    if "openslide.mpp-x" in props:
        candidates.append((_first_number(props["openslide.mpp-x"]), "openslide.mpp-x"))
    for key, factor in VENDOR_KEYS:
        if key in props:
            v = _first_number(props[key])
            candidates.append((None if v is None else v * factor, key))
    if "tiff.XResolution" in props:
        unit = str(props.get("tiff.ResolutionUnit", "")).strip().lower()
        res = _first_number(props["tiff.XResolution"])
        if unit in _UNIT_UM and res and res > 0:
            candidates.append((_UNIT_UM[unit] / res, f"tiff.XResolution ({unit})"))
    for key in OBJECTIVE_KEYS:
        if key in props:
            mag = _first_number(props[key])
            if mag and mag > 0:
                candidates.append((10.0 / mag, f"objective power {key}={mag:g} (10/mag)"))
    for value, source in candidates:
        if _plausible(value):
            return float(value), source
        log.warning("ignoring implausible mpp %r from %s", value, source)
    return None


def resolve_mpp(slide, path: str | os.PathLike, override: float | None = None,
                default: float | None = None, override_source: str = "override",
                slide_id: str | None = None) -> tuple[float, str]:
    """Return ``(level-0 µm/px, source)`` for ``slide`` (an OpenSlide or a property mapping).

    ``override`` (from slides.mpp_overrides, the sample sheet or --mpp) wins; ``default`` is
    slides.default_mpp. Raises :class:`MppError` naming the file and every way to fix it.
    """
    if override is not None:
        if not (math.isfinite(override) and override > 0):
            raise MppError(path, f"mpp override {override!r} from {override_source} must be a "
                                 "positive number of µm/px")
        return float(override), override_source
    props = getattr(slide, "properties", slide) or {}
    found = mpp_from_properties(props)
    if found is not None:
        return found
    if default is not None:
        return float(default), "slides.default_mpp"
    sid = slide_id or os.path.splitext(os.path.basename(str(path)))[0]
    raise MppError(path, "no microns-per-pixel in the slide metadata (looked for openslide.mpp-x, "
                         f"{', '.join(k for k, _ in VENDOR_KEYS)}, TIFF resolution, objective power). "
                   + HOW_TO_FIX.format(slide_id=sid))
