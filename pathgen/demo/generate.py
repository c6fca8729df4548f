"""Write the demo cohort: SVS slides, ground-truth GeoJSON and the slide label table.

Labels, cases and splits come from `cohort.py` (a function of each slide's index and the
seed), so each slide can be generated on its own and the label table needs no slides.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from ..atomic import write_json, write_text
from ..config import ConfigError
from ..config.inputs import DemoConfig
from ..tiling.polygons import valid_geometry
from .aperio import write_aperio_svs
from .cohort import DemoSlide, demo_cohort, demo_slide, demo_slide_index  # noqa: F401 (re-exported)
from .classes import TISSUE_CLASSES
from .files import demo_labels_file, demo_slide_files
from .synth import LR, generate_slide

log = logging.getLogger(__name__)


def cohort_for(demo: DemoConfig) -> dict[str, DemoSlide]:
    """slide_id -> its case, label and split, for the `demo` section's cohort."""
    return {s.slide_id: s for s in demo_cohort(demo.n_slides, demo.holdout_fraction, demo.seed)}


def labels_csv_text(cohort: list[DemoSlide]) -> str:
    """CLAM dataset CSV (case_id, slide_id, label) plus our `split` column."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["case_id", "slide_id", "label", "split"])
    for s in cohort:
        w.writerow([s.case_id, s.slide_id, s.label, s.split])
    return buf.getvalue()


def write_labels(demo: DemoConfig, path: str | Path) -> Path:
    write_text(path, labels_csv_text(list(cohort_for(demo).values())))
    return Path(path)


# -- ground truth as GeoJSON ---------------------------------------------------------------------
def regions_geojson(labels: np.ndarray, scale: int, slide_id: str, slide_label: str) -> dict:
    """Polygons of each class of a label map, in level-0 px (QuPath annotation GeoJSON)."""
    feats = []
    for idx, cls in enumerate(TISSUE_CLASSES, start=1):
        mask = (labels == idx).astype(np.uint8)
        if not mask.any():
            continue
        contours, hier = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        if hier is None:
            continue
        hier = hier[0]

        def ring(c):
            c = cv2.approxPolyDP(c, 0.7, True).reshape(-1, 2).astype(float)
            # label-map pixel (i, j) covers level-0 [i*scale, (i+1)*scale); use its centre
            return (c + 0.5) * scale

        for i, c in enumerate(contours):
            if hier[i][3] != -1:  # a hole; emitted with its parent
                continue
            holes = []
            child = hier[i][2]
            while child != -1:
                holes.append(ring(contours[child]))
                child = hier[child][0]
            # simplified rings can touch or cross themselves: made valid (shapely), see polygons.py
            geometry = valid_geometry(ring(c), holes)
            if geometry is None:
                continue
            feats.append({"type": "Feature", "id": f"{cls.code}-{len(feats)}", "geometry": geometry,
                          "properties": {"objectType": "annotation",
                                         "classification": {"name": cls.code, "color": list(cls.color)}}})
    return {"type": "FeatureCollection", "features": feats,
            "properties": {"slide_id": slide_id, "label": slide_label, "units": "level-0 px",
                           "classes": {c.code: c.text for c in TISSUE_CLASSES}}}


def rasterize_regions(geojson: dict, width: int, height: int, scale: int) -> np.ndarray:
    """Inverse of :func:`regions_geojson`: a (ceil(H/scale), ceil(W/scale)) class-index map.

    Works for any QuPath-style annotation file (unknown classes are ignored); holes are cut."""
    codes = {c.code: i for i, c in enumerate(TISSUE_CLASSES, start=1)}
    out = np.zeros((-(-height // scale), -(-width // scale)), np.uint8)
    for f in geojson.get("features", []):
        name = ((f.get("properties") or {}).get("classification") or {}).get("name")
        geom = f.get("geometry") or {}
        if name not in codes or geom.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for rings in polys:
            m = np.zeros(out.shape, np.uint8)
            pts = [np.round(np.asarray(r, float) / scale - 0.5).astype(np.int32) for r in rings]
            cv2.fillPoly(m, pts[:1], 1)
            if len(pts) > 1:
                cv2.fillPoly(m, pts[1:], 0)
            out[m > 0] = codes[name]
    return out


# -- one slide / the whole demo ----------------------------------------------------------------
def generate_one(demo: DemoConfig, slide_id: str, svs_path: str | Path,
                 regions_path: str | Path) -> dict:
    """Draw demo slide `slide_id` of the `demo` section's cohort and write its SVS and
    ground-truth GeoJSON (atomically)."""
    index = demo_slide_index(slide_id)
    if index is None:  # any index draws: a slide depends on its index and the seed alone
        raise ConfigError(f"{slide_id!r} is not a demo slide id (demo_000, demo_001, ...)")
    d, rec = demo, demo_slide(index, demo.holdout_fraction, demo.seed)
    t0 = time.perf_counter()
    slide = generate_slide(d.seed, rec.index, rec.label == "tumor", d.width_px, d.height_px, d.mpp)
    if slide.label != rec.label:  # cannot happen with the forced tumour focus; guard the contract
        raise RuntimeError(f"{slide_id}: drew a {slide.label} slide for a {rec.label} case")
    t1 = time.perf_counter()
    info = write_aperio_svs(svs_path, slide.image, d.mpp, app_mag=d.app_mag, tile=d.tile_size,
                            quality=d.jpeg_quality,
                            description_extra={"Title": f"pathgen synthetic demo {slide_id}"})
    write_json(regions_path, regions_geojson(slide.labels, LR, slide_id, slide.label), indent=None)
    t2 = time.perf_counter()
    log.info("%s (%s, %s): drawn in %.1fs, written in %.1fs", slide_id, rec.label, rec.split,
             t1 - t0, t2 - t1)
    return {**info, "slide_id": slide_id, "label": rec.label, "split": rec.split,
            "draw_s": t1 - t0, "write_s": t2 - t1, **slide.meta}


def generate_demo(demo: DemoConfig, slide_ids: list[str] | None = None, force: bool = False) -> list[str]:
    """Write all (or the given) demo slides plus slide_labels.csv under demo.out_dir; finished
    slides are kept."""
    done = []
    for sid in slide_ids or list(cohort_for(demo)):
        files = demo_slide_files(demo.out_dir, sid)
        svs, reg = files["slide"], files["regions"]
        if not force and svs.exists() and reg.exists():
            log.info("%s exists, kept (use --force to redraw)", svs)
        else:
            generate_one(demo, sid, svs, reg)
        done.append(sid)
    write_labels(demo, demo_labels_file(demo.out_dir))
    return done
