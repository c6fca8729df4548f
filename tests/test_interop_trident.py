"""TRIDENT's batch Processor finds pathgen's exports (reader side from TRIDENT's documented layout).

TRIDENT's contract, as its README describes it (no TRIDENT code here): a job folder
(``--job_dir``) holds one folder per patching geometry named
``<mag>x_<patch_size>px_<overlap>px_overlap``; patching writes
``patches/<slide>_patches.h5`` there (``coords`` int64 level-0, ``patch_size`` px at
``target_magnification``, ``patch_size_level0``), and patch-feature extraction reads those
coords and writes ``features_<encoder>/<slide>.h5`` (``features``, ``coords``) beside them.
A patch is ``patch_size_level0`` px read at level 0, resized to ``patch_size``.
"""

from __future__ import annotations

import h5py
import numpy as np
import openslide
import pytest
from PIL import Image

from pathgen.cli import main
from pathgen.config.tiling import TilingConfig
from pathgen.demo.aperio import write_aperio_svs
from pathgen.demo.synth import generate_slide
from pathgen.export.clam import export_clam
from pathgen.export.trident import export_trident, magnification_label
from pathgen.features.h5io import root_attrs, write_features
from pathgen.tiling import read_coords, tile_slide
from pathgen.wsi import patch_reader


def trident_paths(job_dir, mag: int, patch_size: int, overlap: int, slide: str, encoder: str):
    """Where a TRIDENT Processor run with --mag/--patch_size/--overlap looks for one slide."""
    geometry = job_dir / f"{mag}x_{patch_size}px_{overlap}px_overlap"
    return geometry / "patches" / f"{slide}_patches.h5", geometry / f"features_{encoder}" / f"{slide}.h5"


def trident_read_patches(slide_path, coords_h5, out_px):
    """TRIDENT-style patch: patch_size_level0 px at level 0, resized to patch_size, then to out_px."""
    with h5py.File(coords_h5, "r") as f:
        ds = f["coords"]
        size0, size = int(ds.attrs["patch_size_level0"]), int(ds.attrs["patch_size"])
        xy = ds[()]
        assert ds.dtype == np.int64
    slide = openslide.OpenSlide(str(slide_path))
    try:
        return np.stack([np.asarray(slide.read_region((int(x), int(y)), 0, (size0, size0)).convert("RGB")
                                    .resize((size, size), Image.BICUBIC).resize((out_px, out_px), Image.BICUBIC))
                         for x, y in xy])
    finally:
        slide.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 40x (0.25 µm/px) demo slide tiled at 20x, 256 px (128 µm), plus a features file."""
    d = tmp_path_factory.mktemp("trident")
    svs = d / "slideB.svs"
    write_aperio_svs(svs, generate_slide(11, 1, True, 2048, 1536, 0.25).image, mpp=0.25)
    coords_h5 = d / "coords" / "slideB.h5"
    tile_slide(svs, coords_h5, TilingConfig(patch_size_um=128, target_mpp=0.5, tissue_threshold=0.3))
    coords, attrs = read_coords(coords_h5)
    with patch_reader(svs) as reader:  # a simple real feature: mean colour per 4x4 cell
        patches = reader.read_patches(coords, attrs["patch_size_level0"], 16).astype(np.float32)
    feats = patches.reshape(len(coords), 4, 4, 4, 4, 3).mean(axis=(2, 4)).reshape(len(coords), -1)
    write_features(d / "features_meancolour" / "slideB.h5", feats, coords, attrs,
                   root_attrs("meancolour", "none", "{}", "float32", feats.shape[1]))
    return svs, d, coords, feats


def test_processor_finds_patches_and_features(run):
    svs, d, coords, feats = run
    job = d / "job"
    assert main(["export", "trident", "--coords", str(d / "coords"), "--features",
                 str(d / "features_meancolour"), "--job", str(job)]) == 0
    patches_h5, features_h5 = trident_paths(job, 20, 256, 0, "slideB", "meancolour")
    assert patches_h5.is_file() and features_h5.is_file()
    with h5py.File(patches_h5, "r") as f:
        a = f["coords"].attrs
        assert (a["patch_size"], a["patch_size_level0"], a["target_magnification"]) == (256, 512, 20)
        assert a["level0_magnification"] == 40 and a["overlap"] == 0
        assert a["savetodir"] == str(patches_h5.parent)
        np.testing.assert_array_equal(f["coords"][()], coords)
    with h5py.File(features_h5, "r") as f:
        np.testing.assert_allclose(f["features"][()], feats)
        np.testing.assert_array_equal(f["coords"][()], coords)
        assert f.attrs["encoder"] == "meancolour"


def test_trident_reading_matches_pathgen(run):
    svs, d, coords, _ = run
    export_trident(d / "job2", coords=d / "coords")
    patches_h5, _ = trident_paths(d / "job2", 20, 256, 0, "slideB", "x")
    theirs = trident_read_patches(svs, patches_h5, 128)
    with patch_reader(svs) as reader:
        ours = reader.read_patches(coords, 512, 128)
    assert len(ours) >= 4 and np.abs(theirs.astype(float) - ours).mean() < 6


def test_pathgen_preset_folder_name(tmp_path, capsys):
    svs = tmp_path / "s.svs"
    write_aperio_svs(svs, generate_slide(11, 2, False, 1536, 1024, 0.5).image, mpp=0.5)
    tile_slide(svs, tmp_path / "coords" / "s.h5", TilingConfig(preset="pathgen"))
    rows = export_trident(tmp_path / "job", coords=tmp_path / "coords")
    assert rows[0]["geometry"] == "40x_672px_0px_overlap"
    assert trident_paths(tmp_path / "job", 40, 672, 0, "s", "x")[0].is_file()
    # a CLAM export means something else by patch_size: refused, with the file named
    export_clam(tmp_path / "clam", coords=tmp_path / "coords")
    bad = tmp_path / "clam" / "patches"
    assert main(["export", "trident", "--coords", str(bad), "--job", str(tmp_path / "j2")]) == 1
    assert f"{bad / 's.h5'}: patch_size does not mean px at target_magnification" in capsys.readouterr().err


def test_magnification_label():
    assert [magnification_label(m) for m in (20.0, 40.0, 12.5, 10 / 0.3)] == ["20", "40", "12.5", "33.33"]
