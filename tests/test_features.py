"""Feature extraction: file contract, empty slides, resume, CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from pathgen.cli import main as pathgen_main
from pathgen.encoders import load_encoder
from pathgen.features import read_features
from pathgen.config.features import FeaturesConfig
from pathgen.features.extract import extract_features
from pathgen.features.files import features_partial_file
from pathgen.features.h5io import FeaturesFileError, ROOT_ATTRS
from pathgen.tiling.h5io import coords_attrs, read_coords, write_coords
from pathgen.wsi import TiledJpegReader
from pathgen_testkit.slide_files import make_svs


torch.set_num_threads(1)
W, H = 1280, 1024


@pytest.fixture(scope="module")
def enc():
    return load_encoder("tiny-demo")


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    d = tmp_path_factory.mktemp("feat")
    path = d / "s1.svs"
    make_svs(path, W, H, levels=(1, 4))
    xs, ys = np.meshgrid(np.arange(0, W - 255, 256), np.arange(0, H - 255, 256))
    coords = np.stack([xs.ravel(), ys.ravel()], 1)[::-1].copy()  # not row-major on purpose
    attrs = coords_attrs(name="s1", save_dir=d, mpp=0.5, mpp_source="test", target_mpp=1.0,
                         patch_size_um=128.0, patch_size=128, patch_size_level0=256,
                         level0_dims=(W, H))
    write_coords(d / "coords.h5", coords, attrs)
    write_coords(d / "empty.h5", coords[:0], attrs)
    return path, d / "coords.h5", d / "empty.h5"


def test_features_file_contract(slide, enc, tmp_path):
    path, cpath, _ = slide
    out = tmp_path / "features_tiny-demo" / "s1.h5"
    summary = extract_features(path, cpath, out, enc, FeaturesConfig(batch_size=3, num_workers=0))
    coords, cattrs = read_coords(cpath)
    feats, fcoords, attrs = read_features(out)
    assert summary["n_patches"] == len(coords) == 20
    assert feats.shape == (20, 128) and feats.dtype == np.float32
    assert np.array_equal(fcoords, coords)  # rows keep the coords file's order
    assert np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-4)
    for key in ROOT_ATTRS:
        assert key in attrs
    assert attrs["encoder"] == "tiny-demo" and attrs["weights"] == "random-init(seed=0)"
    assert attrs["embed_dim"] == 128 and '"jpeg_dct_scale"' in attrs["preprocessing"]
    assert attrs["coords"]["patch_size_level0"] == cattrs["patch_size_level0"]
    assert attrs["coords"]["level0_width"] == W
    with h5py.File(out, "r") as f:  # what CLAM/TRIDENT readers open
        assert set(f.keys()) == {"features", "coords"}
        assert f["coords"].dtype == np.int64
    # row i is the embedding of the patch at coords[i]
    with TiledJpegReader(path) as r:
        patches = r.read_patches(coords[[0, 7]], cattrs["patch_size_level0"], enc.image_size)
    direct = enc.encode_images(enc.normalize_uint8(torch.from_numpy(patches))).numpy()
    assert np.allclose(feats[[0, 7]], direct, atol=1e-4)
    assert not features_partial_file(out).exists()


def test_workers_and_float16_give_same_features(slide, enc, tmp_path):
    path, cpath, _ = slide
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    extract_features(path, cpath, a, enc, FeaturesConfig(batch_size=4, num_workers=0))
    extract_features(path, cpath, b, enc, FeaturesConfig(batch_size=5, num_workers=2, dtype="float16"))
    fa, _, _ = read_features(a)
    fb, _, attrs = read_features(b)
    assert fb.dtype == np.float16 and attrs["dtype"] == "float16"
    assert np.allclose(fa, fb.astype(np.float32), atol=2e-3)


def test_empty_coords_give_valid_empty_file(slide, enc, tmp_path):
    _, _, empty = slide
    out = tmp_path / "e.h5"
    # the slide need not be readable when there is nothing to read
    extract_features(tmp_path / "missing.svs", empty, out, enc)
    feats, coords, attrs = read_features(out)
    assert feats.shape == (0, 128) and coords.shape == (0, 2)
    assert attrs["embed_dim"] == 128 and "patch_size" in attrs["coords"]


def test_resume_after_crash(slide, enc, tmp_path, monkeypatch):
    path, cpath, _ = slide
    out = tmp_path / "r.h5"
    calls = {"n": 0}
    real = enc.encode_images

    def flaky(x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return real(x)

    monkeypatch.setattr(enc, "encode_images", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_features(path, cpath, out, enc, FeaturesConfig(batch_size=4, num_workers=0))
    assert not out.exists() and features_partial_file(out).exists()
    monkeypatch.setattr(enc, "encode_images", real)
    summary = extract_features(path, cpath, out, enc, FeaturesConfig(batch_size=4, num_workers=0))
    assert summary["encoded"] == 20 - 8  # two batches of 4 were kept
    ref = tmp_path / "ref.h5"
    extract_features(path, cpath, ref, enc, FeaturesConfig(batch_size=4, num_workers=0))
    assert np.allclose(read_features(out)[0], read_features(ref)[0], atol=1e-6)


def test_partial_from_other_settings_is_discarded(slide, enc, tmp_path):
    path, cpath, _ = slide
    out = tmp_path / "d.h5"
    with h5py.File(features_partial_file(out), "w") as f:
        f.attrs["pathgen_run_key"] = "something else"
        f.create_dataset("done", data=np.ones(20, bool))
    summary = extract_features(path, cpath, out, enc, FeaturesConfig(batch_size=8, num_workers=0))
    assert summary["encoded"] == 20


def test_read_features_errors(tmp_path):
    with pytest.raises(FeaturesFileError, match="does not exist"):
        read_features(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["coords"] = np.zeros((2, 2), np.int64)
    with pytest.raises(FeaturesFileError, match="no 'features'"):
        read_features(bad)


def test_cli(slide, tmp_path, capsys):
    path, cpath, _ = slide
    out = tmp_path / "cli.h5"
    rc = pathgen_main(["features", str(path), "--coords", str(cpath), "--out", str(out),
                       "--encoder", "tiny-demo", "--batch-size", "8", "--workers", "0",
                       "--device", "cpu", "--set", "demo.enabled=true"])
    assert rc == 0 and read_features(out)[0].shape == (20, 128)
    rc = pathgen_main(["features", str(path), "--coords", str(cpath), "--out", str(out),
                       "--encoder", "nope", "--set", "demo.enabled=true"])
    assert rc == 2
    assert "known encoders" in capsys.readouterr().err
    rc = pathgen_main(["features", str(path), "--coords", str(tmp_path / "none.h5"), "--out",
                       str(out), "--set", "demo.enabled=true"])
    assert rc == 2 and "pathgen tile" in capsys.readouterr().err
