"""Real tissue: OpenSlide's CMU-1 H&E region (tests/data/cmu1_region.svs, CC0 1.0; see
tests/data/README.md) through the library's entry points and real writers — tiling, features
(tiny random-init demo encoder), selection and morphometric captions — and a 3-level pyramid
written from its pixels for the readers' level selection.

Everything else in the suite runs on synthetic slides; this module is the check that the
stages also hold up on a scanner's pixels: a real Aperio header (MPP 0.4990, AppMag 20),
240 px RGB JPEG tiles at Q = 30 with shared tables, real stain variation, glass with debris.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from pathgen.captioning.morphometry import measure_patch
from pathgen.captioning.stage import caption_slide
from pathgen.config.captioning import CaptioningConfig
from pathgen.config.features import FeaturesConfig, known_encoders
from pathgen.config.selection import SelectionConfig
from pathgen.config.tiling import TilingConfig
from pathgen.demo.aperio import write_aperio_svs
from pathgen.encoders import load_encoder
from pathgen.features import read_features
from pathgen.features.extract import extract_features
from pathgen.selection.runner import SelectionModels, run_selection
from pathgen.selection.select import read_selection
from pathgen.tiling import read_coords, tile_slide
from pathgen.wsi import (OpenSlideRegionReader, TiledJpegReader, mpp_from_properties, open_slide,
                         patch_reader, read_rgb, resolve_mpp)

torch.set_num_threads(1)

DATA = Path(__file__).parent / "data"
SLIDE = DATA / "cmu1_region.svs"
SID = "cmu1_region"
W, H, MPP = 2220, 2967, 0.499
PATCH_UM = 56.0  # 112 px at 0.5 µm/px: the region is 1.1 x 1.5 mm, ~0.54 mm² of it tissue
# Settings are spelled out, not taken from the sections' defaults (those are the real-data
# method's: 672 px PathGen patches, an LLM captioning backend, 256 patches per slide).
TILING = TilingConfig(preset=None, patch_size_um=PATCH_UM, target_mpp=0.5)
FEATURES = FeaturesConfig(batch_size=32, num_workers=0, reader="auto", dtype="float32")
# the demo's (pathgen/data/demo.yaml): 40 patches per slide, dedup relaxed for the random-init
# encoder's near-collinear embeddings
SELECTION = SelectionConfig(cancer_type="generic", prompt_top_k=8, max_per_slide=40,
                            dedupe_cosine=0.999, image_format="jpeg")
CAPTIONING = CaptioningConfig(backend="morphometric", concurrency=2, token_budget=77)


def tiling_at(target_mpp: float) -> TilingConfig:
    """112 px patches delivered at ``target_mpp``."""
    return TilingConfig(preset=None, patch_size_um=None, patch_size_px=112, target_mpp=target_mpp)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def quarter(patch: np.ndarray) -> np.ndarray:
    """A 112 px patch at 28 px: real tissue re-encoded as JPEG (Q = 90, 4:2:0) or resampled
    another way differs at single pixels; structure at 4 px must still agree."""
    return cv2.resize(patch, (28, 28), interpolation=cv2.INTER_AREA)


def saturated(rgb: np.ndarray) -> np.ndarray:
    """Stained pixels (HSV saturation > 25 of 255): an independent tissue test, not pathgen's."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)[..., 1] > 25


@pytest.fixture(scope="module")
def level0() -> np.ndarray:
    """The whole region as RGB (OpenSlide, level 0): the reference pixels."""
    slide = open_slide(SLIDE)
    try:
        return read_rgb(slide, SLIDE, (0, 0), 0, (W, H))
    finally:
        slide.close()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("real")


@pytest.fixture(scope="module")
def tiled(work):
    res = tile_slide(SLIDE, work / "coords" / f"{SID}.h5", TILING, qc=work / "qc" / f"{SID}.jpg",
                     geojson=work / "contours" / f"{SID}.geojson", slide_id=SID)
    coords, attrs = read_coords(work / "coords" / f"{SID}.h5")
    return res, coords, attrs


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("tiny-demo")


@pytest.fixture(scope="module")
def features(work, tiled, encoder):
    out = work / "features_tiny-demo" / f"{SID}.h5"
    summary = extract_features(SLIDE, work / "coords" / f"{SID}.h5", out, encoder, FEATURES)
    return summary, out


@pytest.fixture(scope="module")
def selected(work, features):
    spec = known_encoders()["tiny-demo"]
    out_csv = work / "selection" / f"{SID}.csv"
    patches = work / "selection" / "patches"
    stats = run_selection(SELECTION, SelectionModels("tiny-demo", spec, "tiny-demo", spec), SID,
                          features[1], SLIDE, out_csv, patches / SID)
    return stats, out_csv, patches


@pytest.fixture(scope="module")
def captioned(work, selected):
    _, csv_path, patches = selected
    out = work / "captions_morphometric" / f"{SID}.jsonl"
    summary = caption_slide(csv_path, patches, out, CAPTIONING, target_mpp=0.5)
    return summary, [json.loads(line) for line in out.read_text().splitlines()]


# -- the file ---------------------------------------------------------------------------------
def test_the_file_is_the_documented_one():
    """Same bytes as tests/data/README.md says; opens as an Aperio slide with its mpp."""
    documented = re.search(r"sha256 \| `([0-9a-f]{64})`", (DATA / "README.md").read_text()).group(1)
    assert hashlib.sha256(SLIDE.read_bytes()).hexdigest() == documented
    slide = open_slide(SLIDE)
    try:
        props = dict(slide.properties)
        assert props["openslide.vendor"] == "aperio"
        assert slide.level_dimensions == ((W, H),) and props["aperio.AppMag"] == "20"
        assert props["aperio.MPP"] == "0.4990"
        assert resolve_mpp(slide, SLIDE) == (pytest.approx(MPP), "openslide.mpp-x")
    finally:
        slide.close()
    # the Aperio header alone gives the same mpp (OpenSlide's own key removed)
    aperio_only = {k: v for k, v in props.items() if not k.startswith("openslide.")}
    assert mpp_from_properties(aperio_only) == (pytest.approx(MPP), "aperio.MPP")


# -- tiling -----------------------------------------------------------------------------------
def test_tiling_finds_the_tissue_with_the_header_mpp(tiled, work):
    res, coords, attrs = tiled
    assert res.mpp == pytest.approx(MPP) and res.mpp_source == "openslide.mpp-x"
    assert attrs["mpp"] == pytest.approx(MPP) and attrs["level0_magnification"] == pytest.approx(20, rel=0.01)
    size0 = round(PATCH_UM / MPP)  # 112 px at level 0
    assert res.patch_size_level0 == attrs["patch_size_level0"] == size0 and attrs["patch_size"] == 112
    assert attrs["seg_level"] == 0  # one level only: segmentation reads level 0, resized
    # 172 patches and 0.54 mm² of tissue when written; bounds leave room for segmentation tweaks
    assert 140 <= res.n_patches <= 200 and len(coords) == res.n_patches
    assert 0.45 <= res.tissue_area_mm2 <= 0.65 and 1 <= res.n_regions <= 3
    # geometry: one non-overlapping lattice of 112 px cells, every patch inside the slide
    assert coords.dtype == np.int64 and len(np.unique(coords, axis=0)) == len(coords)
    assert ((coords - coords.min(0)) % size0 == 0).all()
    assert (coords >= 0).all() and (coords[:, 0] + size0 <= W).all() and (coords[:, 1] + size0 <= H).all()
    assert (work / "qc" / f"{SID}.jpg").stat().st_size > 10_000
    contours = json.loads((work / "contours" / f"{SID}.geojson").read_text())
    assert len(contours["features"]) == res.n_regions


def test_patches_are_tissue_and_the_rest_is_glass(tiled, level0):
    """An independent stain test on the pixels agrees with the segmentation: kept patches are
    mostly stained, the lattice cells left out are mostly glass, and the tissue area matches."""
    res, coords, _ = tiled
    size0 = res.patch_size_level0
    stained = saturated(level0)
    kept = np.array([stained[y:y + size0, x:x + size0].mean() for x, y in coords])
    x0, y0 = coords.min(0)
    taken = {tuple(c) for c in coords}
    left_out = np.array([stained[y:y + size0, x:x + size0].mean()
                         for y in range(y0 % size0, H - size0 + 1, size0)
                         for x in range(x0 % size0, W - size0 + 1, size0) if (x, y) not in taken])
    assert np.median(kept) >= 0.8 and kept.min() >= 0.3, np.percentile(kept, [0, 10, 50])
    assert np.median(left_out) <= 0.1 and (left_out >= 0.5).mean() <= 0.1
    assert res.tissue_area_mm2 == pytest.approx(stained.sum() * MPP * MPP / 1e6, rel=0.1)


# -- features ---------------------------------------------------------------------------------
def test_features_on_real_pixels(features, tiled, encoder):
    summary, path = features
    _, coords, cattrs = tiled
    feats, fcoords, attrs = read_features(path)
    assert summary["n_patches"] == len(coords) and feats.shape == (len(coords), encoder.embed_dim)
    assert np.array_equal(fcoords, coords) and np.isfinite(feats).all()
    assert np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-4)
    assert attrs["encoder"] == "tiny-demo" and attrs["coords"]["patch_size_level0"] == 112
    # the fast reader took the real file (RGB JPEG tiles with shared tables) at level 0
    assert summary["reader"]["reader"] == "tiff-jpeg" and summary["reader"]["level"] == 0
    assert len(np.unique(feats.round(4), axis=0)) == len(feats)  # real pixels, distinct patches
    with h5py.File(path) as f:
        assert set(f) == {"features", "coords"}


def test_fast_reader_decodes_real_aperio_tiles_like_openslide(tiled, level0, encoder):
    """Q = 30 RGB JPEG tiles with shared JPEGTables, decoded by pathgen's tile reader, equal
    OpenSlide's decode; at the encoder's input size both readers give the same embeddings."""
    _, coords, attrs = tiled
    size0 = int(attrs["patch_size_level0"])
    with TiledJpegReader(SLIDE) as r:
        full = r.read_patches(coords, size0, size0)
        small = r.read_patches(coords, size0, encoder.image_size)
    ref = np.stack([level0[y:y + size0, x:x + size0] for x, y in coords])
    assert max(mad(a, b) for a, b in zip(full, ref)) <= 0.5  # same decode, level 0, 1:1
    with OpenSlideRegionReader(SLIDE) as r:
        other = r.read_patches(coords, size0, encoder.image_size)
    # DCT-scaled decode + one resize vs full decode + another resize, at 64 px
    assert np.mean([mad(a, b) for a, b in zip(small, other)]) <= 5.0
    with torch.no_grad():
        ea, eb = (encoder.encode_images(encoder.normalize_uint8(torch.from_numpy(x))).numpy()
                  for x in (small, other))
    assert (np.sum(ea * eb, axis=1) >= 0.99).all()


# -- selection + captions ---------------------------------------------------------------------
def test_selection_on_real_features(selected, tiled, level0):
    stats, csv_path, patches = selected
    _, coords, _ = tiled
    rows = read_selection(csv_path)
    assert stats["n_patches"] == len(coords) and stats["kept"] == len(rows) == 40
    assert {(int(r["x"]), int(r["y"])) for r in rows} <= {tuple(c) for c in coords}
    for r in rows[:10]:  # the saved image is that place of the slide
        x, y, size0 = int(r["x"]), int(r["y"]), int(r["patch_size_level0"])
        img = np.asarray(Image.open(patches / r["image"]).convert("RGB"))
        assert img.shape == (112, 112, 3)
        ref = cv2.resize(level0[y:y + size0, x:x + size0], (112, 112), interpolation=cv2.INTER_AREA)
        assert mad(quarter(img), quarter(ref)) <= 4.0


def test_morphometric_captions_on_real_pixels(captioned, selected):
    """Every selected patch is captioned within the token budget, in physical units of the
    real mpp. The morphometric rules were calibrated on the synthetic demo tissue: the words
    are not diagnoses of this sample (they call clefts between its collagen bundles 'glands
    with open lumina' and its benign squamous epithelium 'malignant-appearing'), so the
    measurements are checked below, not the wording."""
    summary, recs = captioned
    rows = read_selection(selected[1])
    assert len(recs) == len(rows) == summary["n_selected"] and summary["n_failed"] == 0
    assert all(r["status"] == "ok" and r["n_tokens"] <= 77 and r["backend"] == "morphometric"
               for r in recs)
    assert summary["n_accepted"] >= 0.8 * len(recs)
    assert all(f"{PATCH_UM:g} µm field" in r["describe"] for r in recs)
    assert len({r["caption"] for r in recs}) >= len(recs) // 2  # patches differ, so do captions


def test_morphometry_measures_real_nuclei(tiled):
    """On all tissue patches: nuclei are found, of nuclear size, and their density varies as
    between epithelium and stroma (a blank or uniform measurement would not)."""
    _, coords, attrs = tiled
    with patch_reader(SLIDE) as r:
        patches = r.read_patches(coords, attrs["patch_size_level0"], 112)
    ms = [measure_patch(p, 0.5) for p in patches]
    nuclei = np.array([m.nuclei for m in ms])
    density = np.array([m.nuclei_per_mm2 for m in ms])
    areas = np.array([m.nuclear_area_um2 for m in ms if m.nuclei])
    assert np.median(nuclei) >= 5 and (nuclei > 0).mean() >= 0.8
    assert 8 <= np.median(areas) <= 60  # µm², from the real mpp
    lo, hi = np.percentile(density, [10, 90])
    assert hi > 3 * lo and 2_000 <= np.median(density) <= 20_000  # nuclei per mm² of tissue


# -- a 3-level pyramid of the same pixels: level selection --------------------------------------
@pytest.fixture(scope="module")
def pyramid(work, level0) -> Path:
    """Level 0 = the region's pixels (re-encoded), levels 1 and 2 = 2x and 4x box averages, in
    pathgen's Aperio writer (tiled JPEG, Aperio header with the same MPP)."""
    path = work / "cmu1_pyramid.svs"
    info = write_aperio_svs(path, level0, mpp=MPP, app_mag=20, tile=240, quality=90, levels=[1, 2, 4])
    assert info["dimensions"] == [(W, H), (W // 2, H // 2), (W // 4, H // 4)]
    return path


@pytest.fixture(scope="module")
def pyramid_level0(pyramid) -> np.ndarray:
    slide = open_slide(pyramid)
    try:
        return read_rgb(slide, pyramid, (0, 0), 0, (W, H))
    finally:
        slide.close()


def test_pyramid_opens_with_three_levels_and_the_mpp(pyramid):
    slide = open_slide(pyramid)
    try:
        assert slide.properties["openslide.vendor"] == "aperio" and slide.level_count == 3
        assert slide.level_downsamples == pytest.approx([1, 2, 4], rel=1e-3)
        assert resolve_mpp(slide, pyramid)[0] == pytest.approx(MPP)
    finally:
        slide.close()


def test_tiling_the_pyramid_segments_a_low_level_and_agrees(pyramid, tiled, work):
    res1, _, _ = tiled
    res3 = tile_slide(pyramid, work / "pyr" / "coords.h5", TILING, slide_id="cmu1_pyramid")
    _, attrs = read_coords(work / "pyr" / "coords.h5")
    assert attrs["seg_level"] == 2  # seg_mpp 8: the 2 µm/px level, not level 0
    assert list(attrs["pyramid_downsamples"]) == pytest.approx([1, 2, 4], rel=1e-3)
    assert res3.tissue_area_mm2 == pytest.approx(res1.tissue_area_mm2, rel=0.03)
    assert abs(res3.n_patches - res1.n_patches) <= 0.05 * res1.n_patches


@pytest.mark.parametrize("target_mpp,level", [(0.5, 0), (1.0, 1), (2.0, 2)])
def test_readers_pick_the_level_of_the_target_mpp(pyramid, pyramid_level0, work, target_mpp, level):
    """112 px patches at 0.5 / 1 / 2 µm/px (56 / 112 / 224 µm): both readers read level 0 / 1 / 2,
    and the patches equal an area-downsampled level-0 read of the same file. Real tissue
    re-encoded as JPEG differs at single pixels between levels, so the patches are compared at
    a quarter of their size (28 px); a shift of 1/8 patch is far outside the tolerance."""
    out = work / "pyr_levels" / f"{target_mpp:g}.h5"
    tile_slide(pyramid, out, tiling_at(target_mpp),
               slide_id="cmu1_pyramid")
    coords, attrs = read_coords(out)
    size0 = int(attrs["patch_size_level0"])
    assert size0 == round(112 * target_mpp / MPP) and len(coords) >= 8
    ref = [quarter(cv2.resize(pyramid_level0[y:y + size0, x:x + size0], (112, 112),
                              interpolation=cv2.INTER_AREA)) for x, y in coords]
    for reader in (TiledJpegReader(pyramid), OpenSlideRegionReader(pyramid)):
        with reader as r:
            assert r.plan(size0, 112).level == level, type(r).__name__
            got = r.read_patches(coords, size0, 112)
            shifted = r.read_patches(coords + size0 // 8, size0, 112)
        diffs = [mad(quarter(g), f) for g, f in zip(got, ref)]
        assert max(diffs) <= 6.0, (type(reader).__name__, np.round(diffs, 2))
        assert min(mad(quarter(s), f) for s, f in zip(shifted, ref)) > 15.0


def test_features_from_level_1_match_the_single_level_file(pyramid, work, encoder):
    """Through the real features code: 112 µm patches at 1 µm/px come from level 1 of the
    pyramid and from level 0 (DCT-scaled) of the original file; the embeddings agree."""
    coords_path = work / "pyr_feat" / "coords.h5"
    tile_slide(pyramid, coords_path, tiling_at(1.0),
               slide_id="cmu1_pyramid")
    a = extract_features(pyramid, coords_path, work / "pyr_feat" / "pyramid.h5", encoder, FEATURES)
    b = extract_features(SLIDE, coords_path, work / "pyr_feat" / "original.h5", encoder, FEATURES)
    assert a["reader"]["level"] == 1 and b["reader"]["level"] == 0
    fa, ca, _ = read_features(work / "pyr_feat" / "pyramid.h5")
    fb, cb, _ = read_features(work / "pyr_feat" / "original.h5")
    assert np.array_equal(ca, cb) and len(fa) >= 8
    assert (np.sum(fa * fb, axis=1) >= 0.98).all(), np.sum(fa * fb, axis=1).min()
