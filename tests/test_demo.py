"""Tests of the embedded demo: Aperio writer, synthesis, ground truth, cohort, benchmark."""

import csv
import json

import numpy as np
import openslide
import pytest

from pathgen.config import validate_config
from pathgen.demo.aperio import TileSource, write_aperio_svs
from pathgen.demo.classes import CLASS_INDEX
from pathgen.demo.generate import (demo_cohort, generate_demo, rasterize_regions, regions_geojson)
from pathgen.demo.synth import LR, generate_slide
from pathgen.paths import Layout


def _gradient(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    b = 128 + 100 * np.sin(xx / 9.0) * np.cos(yy / 11.0)  # smooth enough for 4:2:0 chroma
    return np.stack([xx * 255 // w, yy * 255 // h, b], -1).astype(np.uint8)


def test_aperio_opens_in_openslide(tmp_path):
    img = _gradient(1100, 1500)
    info = write_aperio_svs(tmp_path / "a.svs", img, mpp=0.25)
    with openslide.OpenSlide(str(tmp_path / "a.svs")) as s:
        assert s.properties["openslide.vendor"] == "aperio"
        assert float(s.properties["openslide.mpp-x"]) == pytest.approx(0.25)
        assert s.properties["aperio.AppMag"] == "40"
        assert s.dimensions == (1500, 1100)
        assert s.level_count == 2 and s.level_dimensions[1] == (375, 275)
        assert info["dimensions"] == list(s.level_dimensions)
        assert "thumbnail" in s.associated_images
        got = np.asarray(s.read_region((300, 200), 0, (400, 300)).convert("RGB")).astype(int)
        assert np.abs(got - img[200:500, 300:700]).mean() < 4  # JPEG tolerance
        low = np.asarray(s.read_region((0, 0), 1, (375, 275)).convert("RGB")).astype(float)
        assert np.abs(low.mean((0, 1)) - img.mean((0, 1))).max() < 3


def test_streamed_sources_equal_array(tmp_path):
    import tifffile

    img = _gradient(600, 700)
    write_aperio_svs(tmp_path / "x.svs", img, mpp=0.5, tile=128)
    write_aperio_svs(tmp_path / "y.svs", TileSource(700, 600, lambda x, y, w, h: img[y:y + h, x:x + w]),
                     mpp=0.5, tile=128)

    def tiles():
        for y in range(0, 600, 128):
            for x in range(0, 700, 128):
                t = np.zeros((128, 128, 3), np.uint8)
                p = img[y:y + 128, x:x + 128]
                t[:p.shape[0], :p.shape[1]] = p
                yield t
    write_aperio_svs(tmp_path / "z.svs", TileSource(700, 600, tiles()), mpp=0.5, tile=128)
    pages = []
    for n in "xyz":
        with tifffile.TiffFile(tmp_path / f"{n}.svs") as tf:
            pages.append([p.asarray() for p in tf.pages])
    for other in pages[1:]:
        assert len(other) == len(pages[0])
        for a, b in zip(pages[0], other):
            np.testing.assert_array_equal(a, b)


def test_aperio_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_aperio_svs(tmp_path / "b.svs", np.zeros((64, 64, 3), np.float32), mpp=0.5)
    with pytest.raises(ValueError, match="ended early"):
        write_aperio_svs(tmp_path / "c.svs", TileSource(512, 512, iter([np.zeros((256, 256, 3), np.uint8)])),
                         mpp=0.5)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


@pytest.fixture(scope="module")
def small_pair():
    return (generate_slide(3, 0, True, 1024, 768, 0.5), generate_slide(3, 1, False, 1024, 768, 0.5))


def test_determinism(small_pair):
    again = generate_slide(3, 0, True, 1024, 768, 0.5)
    np.testing.assert_array_equal(again.image, small_pair[0].image)
    np.testing.assert_array_equal(again.labels, small_pair[0].labels)
    other = generate_slide(4, 0, True, 1024, 768, 0.5)
    assert not np.array_equal(other.image, small_pair[0].image)


def test_labels_match_regions(small_pair):
    tumor, normal = small_pair
    assert tumor.label == "tumor" and (tumor.labels == CLASS_INDEX["tumor"]).any()
    assert normal.label == "normal" and not (normal.labels == CLASS_INDEX["tumor"]).any()
    gj = regions_geojson(tumor.labels, LR, "t", "tumor")
    names = {f["properties"]["classification"]["name"] for f in gj["features"]}
    assert "tumor" in names
    gn = regions_geojson(normal.labels, LR, "n", "normal")
    assert "tumor" not in {f["properties"]["classification"]["name"] for f in gn["features"]}
    back = rasterize_regions(gj, 1024, 768, LR)
    assert (back == tumor.labels).mean() > 0.95  # polygons reproduce the drawn label map


def test_colours_deconvolve_as_he(small_pair):
    from skimage.color import rgb2hed

    img, lab = small_pair[0].image, small_pair[0].labels
    hed = rgb2hed(img)
    full = np.kron(lab, np.ones((LR, LR), np.uint8))[:img.shape[0], :img.shape[1]]
    h = hed[..., 0]
    glass = h[full == 0].mean()
    lymph_or_tumor = (full == CLASS_INDEX["lymphocytes"]) | (full == CLASS_INDEX["tumor"])
    dark = h[lymph_or_tumor] > np.percentile(h[lymph_or_tumor], 80)  # nuclei
    assert h[lymph_or_tumor][dark].mean() > glass + 0.05
    stroma = full == CLASS_INDEX["stroma"]
    assert hed[..., 1][stroma].mean() > hed[..., 1][full == 0].mean() + 0.02  # eosin in stroma
    r, g, b = (img[stroma].mean(0))
    assert r > g and b > g  # pink


def test_cohort_cases_respect_split():
    cfg = validate_config({"demo": {"n_slides": 24, "holdout_fraction": 0.25}})
    cohort = demo_cohort(24, 0.25)
    hold = Layout(cfg).demo_holdout_ids([s.slide_id for s in cohort])
    assert [s.slide_id for s in cohort if s.split == "holdout"] == hold
    by_case = {}
    for s in cohort:
        by_case.setdefault(s.case_id, set()).add((s.split, s.label))
    assert all(len(v) == 1 for v in by_case.values())  # one split and one label per patient
    assert any(sum(1 for s in cohort if s.case_id == c) == 2 for c in by_case)
    labels = [s.label for s in cohort]
    assert 8 <= labels.count("tumor") <= 16
    assert {s.label for s in cohort if s.split == "holdout"} == {"tumor", "normal"}


def test_cohort_is_stable_as_it_grows():
    """Slide k's case, label and split never depend on n_slides (adding slides redraws,
    relabels and re-splits nothing), and the holdout share stays near holdout_fraction."""
    big = demo_cohort(200, 0.25, seed=3)
    for n in (1, 5, 8, 20, 57):
        assert demo_cohort(n, 0.25, seed=3) == big[:n]
    share = sum(s.split == "holdout" for s in big) / len(big)
    assert 0.15 <= share <= 0.3, share
    held = [s.label for s in big if s.split == "holdout"]
    assert abs(held.count("tumor") - held.count("normal")) <= 2  # labels alternate


def test_generate_and_benchmark(tmp_path):
    from pathgen.demo.benchmark import demo_benchmark
    from pathgen.demo.workflow import holdout_sources

    cfg = validate_config({"results_dir": str(tmp_path / "res"),
                           "demo": {"out_dir": str(tmp_path / "demo"), "n_slides": 4,
                                    "width_px": 1536, "height_px": 1024, "holdout_fraction": 0.5,
                                    "zeroshot_min_purity": 0.75},
                           "tiling": {"patch_size_um": 64, "target_mpp": 1.0}})
    generate_demo(cfg.demo)
    lay = Layout(cfg)
    rows = list(csv.DictReader(open(lay.demo_labels)))
    # holdout_fraction 0.5: case_001 (demo_001 + demo_002) and case_002 (demo_003) held out
    assert [r["split"] for r in rows] == ["caption", "holdout", "holdout", "holdout"]
    for r in rows:
        gj = json.loads(lay.demo_regions(r["slide_id"]).read_text())
        has_tumor = any(f["properties"]["classification"]["name"] == "tumor" for f in gj["features"])
        assert has_tumor == (r["label"] == "tumor")
    mtime = lay.demo_slide("demo_000").stat().st_mtime_ns
    generate_demo(cfg.demo)  # rerun keeps finished slides
    assert lay.demo_slide("demo_000").stat().st_mtime_ns == mtime

    src = holdout_sources(cfg)
    info = demo_benchmark(cfg.demo, cfg.tiling, src["slides"], src["regions"], lay.demo_zeroshot_dir)
    zs = tmp_path / "demo" / "zeroshot"
    man = list(csv.DictReader(open(zs / "manifest.csv")))
    assert man and {m["slide_id"] for m in man} <= {"demo_001", "demo_002", "demo_003"}
    classes = json.loads((zs / "classes.json").read_text())
    assert set(classes) == {m["class"] for m in man} == set(info["counts"])
    assert (zs / "template").read_text().strip() == "An H&E image of {}."
    conch = json.loads((zs / "prompts_conch.json").read_text())["0"]
    assert set(conch["classnames"]) == set(classes) and all("CLASSNAME" in t for t in conch["templates"])
    import cv2
    im = cv2.imread(str(zs / man[0]["file"]))
    assert im.shape == (64, 64, 3)  # 64 µm at 1 µm/px


def test_large_slide_streams(tmp_path):
    from pathgen.demo.large import make_large_slide

    make_large_slide(tmp_path / "big.svs", 3072, 2048, mpp=0.25, tissue_fraction=0.3, seed=1)
    with openslide.OpenSlide(str(tmp_path / "big.svs")) as s:
        assert s.properties["openslide.vendor"] == "aperio" and s.level_count >= 2
        thumb = np.asarray(s.get_thumbnail((300, 200)).convert("L"))
        frac = (thumb < 220).mean()
        assert 0.15 < frac < 0.45
