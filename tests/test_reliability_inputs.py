"""Nothing lost, nothing let in: hostile inputs and killed runs.

Each test writes its own hostile fixture in tmp_path and checks the clear error (file, line,
field named, the fix said), that nothing was written outside the target folder, and that
nothing already finished was lost:

- dataset builder: traversal via slide_id / image, absolute paths, symlinks out of the root;
- slide ids that collide with captioning's side files (.partial / .rejects / .summary);
- features: finalised by rename (no copy), a failed rename keeps the finished partial, a
  write error (EFBIG here, as ENOSPC) is a clear error and no segfault;
- config tables: short rows, binary files, duplicate and unknown ids, file:line messages;
- recovery after `snakemake` itself is killed: LockException -> `pathgen recover` ->
  the rerun with the workflow profile's rerun-incomplete succeeds.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from pathgen.config import ConfigError, validate_config
from pathgen.config.dataset import DatasetConfig
from pathgen.dataset import build_dataset
from pathgen.dataset.build import file_ids_from_sheet, read_file_ids
from pathgen.dataset.records import DatasetInputError
from pathgen.cohort import (SLIDE_ID_PATTERN, SlideRecord, check_slide_id, list_slides,
                            read_mpp_overrides)

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def tree(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every path under root (not following symlinks) -> (kind, size, mtime_ns)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if skip is not None and p == skip:
                continue
            st = p.lstat()
            out[str(p.relative_to(root))] = (p.is_symlink(), st.st_size, st.st_mtime_ns)
    return out


# -- dataset builder fixtures ----------------------------------------------------------------

def caption_record(slide: str, x: int, y: int, **kw) -> dict:
    rec = {"slide_id": slide, "x": x, "y": y, "level": 0, "size": 16, "mpp": 0.5,
           "image": f"{slide}/{x}_{y}.jpg", "backend": "morphometric", "model": "m",
           "prompt_hash": "abc", "caption": f"caption of {slide} at {x},{y}", "status": "ok",
           "accepted": True, "reject_reasons": []}
    rec.update(kw)
    return rec


def make_captions(feat_dir: Path, slide: str, n: int = 2, extra: list[dict] | None = None) -> Path:
    """A slide's patches (selection/patches/<slide>/) and caption file (captions/<slide>.jsonl)."""
    patches = feat_dir / "selection" / "patches" / slide
    patches.mkdir(parents=True, exist_ok=True)
    cap = feat_dir / "captions"
    cap.mkdir(exist_ok=True)
    recs = []
    for i in range(n):
        x, y = 256 * i, 0
        Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)).save(patches / f"{x}_{y}.jpg")
        recs.append(caption_record(slide, x, y))
    recs += extra or []
    path = cap / f"{slide}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


@pytest.fixture
def dataset_dirs(tmp_path):
    """tmp_path/features (inputs), tmp_path/out (the dataset folder), a secret outside both."""
    feat = tmp_path / "features"
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for the dataset\n")
    return feat, tmp_path / "out", secret


def assert_refused(exc_info, *needles):
    msg = str(exc_info.value)
    for n in needles:
        assert n in msg, f"{n!r} not in: {msg}"


def assert_nothing_written(tmp_path: Path, before: dict, out: Path):
    """Nothing changed outside `out`, and `out` has no images/shards (nothing let in)."""
    assert tree(tmp_path, skip=out) == before
    if out.exists():
        assert not list(out.rglob("*.jpg")) and not list(out.rglob("*.tar"))


def test_dataset_record_slide_id_traversal_refused(tmp_path, dataset_dirs):
    feat, out, _ = dataset_dirs
    cap = make_captions(feat, "S1", extra=[caption_record("../../../x", 512, 0,
                                                          image="S1/0_0.jpg")])
    before = tree(tmp_path)
    with pytest.raises(DatasetInputError) as ei:
        build_dataset([cap], out, DatasetConfig())
    assert_refused(ei, str(cap), "line 3", "field 'slide_id'", "'../../../x'", "[A-Za-z0-9._-]")
    assert_nothing_written(tmp_path, before, out)
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()
    # the CLI says the same, exit 1, no traceback
    proc = subprocess.run([PY, "-m", "pathgen.cli", "build-dataset", str(cap), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=120)
    assert proc.returncode == 1 and "refused input" in proc.stderr and "line 3" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_nothing_written(tmp_path, before, out)


def test_dataset_record_of_another_slide_refused(tmp_path, dataset_dirs):
    feat, out, _ = dataset_dirs
    cap = make_captions(feat, "good", extra=[caption_record("good.partial", 512, 0)])
    with pytest.raises(DatasetInputError) as ei:
        build_dataset([cap], out)
    assert_refused(ei, "line 3", "field 'slide_id'", "'good.partial'", "side file")
    cap = make_captions(feat, "good", extra=[caption_record("other", 512, 0)])
    with pytest.raises(DatasetInputError) as ei:
        build_dataset([cap], out)
    assert_refused(ei, "line 3", "'other'", "is not this file's slide 'good'")


@pytest.mark.parametrize("image", ["../../../../etc/passwd", "S1/../../outside/secret.txt",
                                   "{secret}", "/etc/passwd"])
def test_dataset_image_escaping_root_refused(tmp_path, dataset_dirs, image):
    feat, out, secret = dataset_dirs
    image = image.format(secret=secret)
    cap = make_captions(feat, "S1", extra=[caption_record("S1", 512, 0, image=image)])
    before = tree(tmp_path)
    with pytest.raises(DatasetInputError) as ei:
        build_dataset([cap], out, images_root=feat / "selection" / "patches")
    assert_refused(ei, str(cap), "line 3", "field 'image'", repr(image), "must stay inside it")
    assert_nothing_written(tmp_path, before, out)


def test_dataset_symlink_out_of_root_refused(tmp_path, dataset_dirs):
    feat, out, secret = dataset_dirs
    cap = make_captions(feat, "S1")
    link = feat / "selection" / "patches" / "S1" / "512_0.jpg"
    link.symlink_to(secret)
    recs = cap.read_text() + json.dumps(caption_record("S1", 512, 0)) + "\n"
    cap.write_text(recs)
    before = tree(tmp_path)
    with pytest.raises(DatasetInputError) as ei:
        build_dataset([cap], out, DatasetConfig(images="hardlink"))
    assert_refused(ei, "line 3", "field 'image'", "symlink", str(secret), "refused")
    assert_nothing_written(tmp_path, before, out)
    assert secret.stat().st_nlink == 1  # never hard-linked


def test_dataset_symlink_inside_root_and_normal_build_work(tmp_path, dataset_dirs):
    feat, out, secret = dataset_dirs
    cap = make_captions(feat, "S1", n=2)
    patches = feat / "selection" / "patches" / "S1"
    (patches / "512_0.jpg").symlink_to(patches / "0_0.jpg")  # inside the root: fine
    cap.write_text(cap.read_text() + json.dumps(caption_record("S1", 512, 0)) + "\n")
    card = build_dataset([cap], out, DatasetConfig())
    assert card["n_pairs"] == 3
    for p in (out / "images").rglob("*"):
        assert p.is_dir() or p.resolve().is_relative_to(feat.resolve()) or \
            p.resolve().is_relative_to(out.resolve())


@pytest.mark.parametrize("field,value,needle", [
    ("x", "1; rm -rf /", "field 'x'"), ("y", -5, "field 'y'"), ("x", True, "field 'x'"),
    ("image", ["a"], "field 'image'"), ("caption", {"a": 1}, "field 'caption'")])
def test_dataset_bad_fields_name_line_and_field(tmp_path, dataset_dirs, field, value, needle):
    feat, out, _ = dataset_dirs
    rec = caption_record("S1", 512, 0)
    rec[field] = value
    cap = make_captions(feat, "S1", extra=[rec])
    with pytest.raises(DatasetInputError) as ei:
        build_dataset([cap], out)
    assert_refused(ei, str(cap), "line 3", needle)
    assert not out.exists()


def test_dataset_caption_file_names_are_slide_ids(tmp_path, dataset_dirs):
    feat, out, _ = dataset_dirs
    make_captions(feat, "S1")
    for name in ("..jsonl", "good.summary.jsonl", "bad name.jsonl"):
        p = feat / "captions" / name
        p.write_text("")
        with pytest.raises(DatasetInputError) as ei:
            build_dataset([p], out)
        assert_refused(ei, str(p), "the file name gives slide id")
    binary = feat / "captions" / "B1.jsonl"
    binary.write_bytes(b'{"slide_id": "B1"}\n\xff\xfe\x00\x01garbage\n')
    with pytest.raises(DatasetInputError) as ei:
        build_dataset([binary], out)
    assert_refused(ei, str(binary), "line 2", "not UTF-8")
    assert not out.exists()


# -- slide ids vs captioning's side files -----------------------------------------------------

@pytest.mark.parametrize("sid", ["good.rejects", "good.partial", "good.summary", "Good.PARTIAL",
                                 "../x", "a/b", ".hidden", ""])
def test_reserved_and_unsafe_slide_ids_refused(sid):
    import re

    with pytest.raises(ConfigError) as ei:
        check_slide_id(sid, "sheet.csv line 3")
    assert "sheet.csv line 3" in str(ei.value) and "Rename" in str(ei.value)
    assert not re.fullmatch(SLIDE_ID_PATTERN, sid)  # the Snakemake wildcard agrees


@pytest.mark.parametrize("sid", ["good", "S1.a", "good.partialx", "TCGA-AB-1234.01", "partial"])
def test_safe_slide_ids_accepted(sid):
    import re

    assert check_slide_id(sid, "x") == sid and re.fullmatch(SLIDE_ID_PATTERN, sid)


def _cfg(**slides):
    return validate_config({"demo": {"enabled": False}, "slides": slides})


def test_sheet_with_colliding_ids_refused_at_parse(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("slide_id,path\ngood,good.svs\ngood.rejects,other.svs\n")
    with pytest.raises(ConfigError) as ei:
        list_slides(_cfg(sample_sheet=str(sheet)))
    assert_refused(ei, f"{sheet} line 3", "'good.rejects'", ".rejects", "collide")
    sheet.write_text("slide_id,path\ngood.partial,a.svs\ngood,b.svs\n")
    with pytest.raises(ConfigError, match=r"'good\.partial' \(from .*sheet\.csv line 2"):
        list_slides(_cfg(sample_sheet=str(sheet)))


def test_dir_with_colliding_file_name_refused(tmp_path):
    (tmp_path / "good.svs").write_bytes(b"x")
    (tmp_path / "good.summary.svs").write_bytes(b"x")
    with pytest.raises(ConfigError) as ei:
        list_slides(_cfg(dir=str(tmp_path)))
    assert_refused(ei, "good.summary.svs", ".summary", "sample sheet")


def test_companion_named_caption_files_never_merge(tmp_path, dataset_dirs):
    """good.jsonl + good.rejects.jsonl / good.partial.jsonl: only good counts, once."""
    feat, out, _ = dataset_dirs
    good = make_captions(feat, "good", n=2)
    for suffix in (".rejects.jsonl", ".partial.jsonl"):
        good.with_name("good" + suffix).write_text(
            json.dumps(caption_record("good", 9000, 0, accepted=False, caption="")) + "\n")
    card = build_dataset(sorted(good.parent.glob("*.jsonl")), out)
    assert card["n_slides"] == 1 and card["n_pairs"] == 2 and card["n_rejected"] == 1


# -- features: finalise by rename, keep the finished partial, clear write errors -------------


@pytest.fixture(scope="module")
def feat_slide(tmp_path_factory):
    from pathgen_testkit.slide_files import make_svs

    from pathgen.tiling.h5io import coords_attrs, write_coords

    d = tmp_path_factory.mktemp("feat")
    W, H = 1280, 1024
    make_svs(d / "s1.svs", W, H, levels=(1, 4))
    xs, ys = np.meshgrid(np.arange(0, W - 255, 64), np.arange(0, H - 255, 64))
    coords = np.stack([xs.ravel(), ys.ravel()], 1).copy()
    attrs = coords_attrs(name="s1", save_dir=d, mpp=0.5, mpp_source="test", target_mpp=1.0,
                         patch_size_um=128.0, patch_size=128, patch_size_level0=256,
                         level0_dims=(W, H))
    write_coords(d / "coords.h5", coords, attrs)
    return d / "s1.svs", d / "coords.h5", len(coords)


@pytest.fixture(scope="module")
def enc():
    import torch

    from pathgen.encoders import load_encoder

    torch.set_num_threads(1)
    return load_encoder("tiny-demo")


def test_features_finalised_by_rename_not_copy(feat_slide, enc, tmp_path, monkeypatch):
    from pathgen.features import read_features
    from pathgen.config.features import FeaturesConfig
    from pathgen.features.extract import extract_features
    from pathgen.features.files import features_partial_file

    slide, coords, n = feat_slide
    out = tmp_path / "f" / "s1.h5"
    for name in ("copyfile", "copy", "copy2"):
        monkeypatch.setattr(shutil, name, lambda *a, **k: pytest.fail("copied the partial"))
    seen = {}
    real_replace = os.replace

    def replace(src, dst):
        seen["ino"] = os.stat(src).st_ino
        return real_replace(src, dst)

    monkeypatch.setattr("pathgen.features.extract.os.replace", replace)
    extract_features(slide, coords, out, enc, FeaturesConfig(batch_size=32, num_workers=0))
    assert os.stat(out).st_ino == seen["ino"]  # the partial itself became the output
    assert not features_partial_file(out).exists()
    import h5py

    with h5py.File(out, "r") as f:
        assert set(f.keys()) == {"features", "coords"} and "pathgen_run_key" not in f.attrs
    assert read_features(out)[0].shape == (n, 128)


def test_features_failed_rename_keeps_finished_partial(feat_slide, enc, tmp_path, monkeypatch):
    from pathgen.features import read_features
    from pathgen.config.features import FeaturesConfig
    from pathgen.features.extract import FeatureWriteError, extract_features
    from pathgen.features.files import features_partial_file

    slide, coords, n = feat_slide
    out = tmp_path / "s1.h5"

    def broken(src, dst):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("pathgen.features.extract.os.replace", broken)
    with pytest.raises(FeatureWriteError) as ei:
        extract_features(slide, coords, out, enc, FeaturesConfig(batch_size=32, num_workers=0))
    assert_refused(ei, str(features_partial_file(out)), "complete and kept", "rerun")
    assert features_partial_file(out).exists() and not out.exists()
    monkeypatch.undo()
    summary = extract_features(slide, coords, out, enc, FeaturesConfig(batch_size=32, num_workers=0))
    assert summary["encoded"] == 0  # nothing re-encoded: the finished partial was kept
    ref = tmp_path / "ref.h5"
    extract_features(slide, coords, ref, enc, FeaturesConfig(batch_size=32, num_workers=0))
    assert np.allclose(read_features(out)[0], read_features(ref)[0], atol=1e-6)


FILL_UP = """
import resource, sys
import torch; torch.set_num_threads(1)
from pathgen.config.features import FeaturesConfig
from pathgen.features.extract import extract_features
limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes past it: EFBIG
extract_features({slide!r}, {coords!r}, sys.argv[2], "tiny-demo",
                 FeaturesConfig(batch_size=8, num_workers=0, device="cpu"))
print("OK")
"""


def test_features_write_error_is_clear_and_no_segfault(feat_slide, enc, tmp_path):
    """A write error mid-extraction (EFBIG from RLIMIT_FSIZE; ENOSPC takes the same path):
    exit 1 with the path and errno, no SIGSEGV, the incomplete partial removed, a finished
    neighbour untouched, and the rerun succeeds."""
    from pathgen.features import read_features
    from pathgen.config.features import FeaturesConfig
    from pathgen.features.extract import extract_features
    from pathgen.features.files import features_partial_file

    slide, coords, n = feat_slide
    script = tmp_path / "fill.py"
    script.write_text(FILL_UP.format(slide=str(slide), coords=str(coords)))
    d = tmp_path / "features_tiny-demo"
    done = d / "done.h5"
    extract_features(slide, coords, done, enc, FeaturesConfig(batch_size=32, num_workers=0))
    done_bytes = done.read_bytes()
    out = d / "s1.h5"
    proc = subprocess.run([PY, str(script), str(40_000), str(out)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])  # not -11 / 139
    err = proc.stderr
    assert "FeatureWriteError" in err and str(features_partial_file(out)) in err, err[-3000:]
    assert f"errno {errno.EFBIG} EFBIG" in err and "then rerun" in err
    assert not out.exists() and not features_partial_file(out).exists()
    assert done.read_bytes() == done_bytes  # finished work untouched
    assert sorted(p.name for p in d.iterdir()) == ["done.h5"]
    extract_features(slide, coords, out, enc, FeaturesConfig(batch_size=32, num_workers=0))  # the rerun
    assert np.allclose(read_features(out)[0], read_features(done)[0], atol=1e-6)


# -- config tables ------------------------------------------------------------------------------

def test_short_sample_sheet_row_names_file_and_line(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("slide_id,path,mpp\nA1,a.svs,0.25\nB1\n")
    with pytest.raises(ConfigError) as ei:
        list_slides(_cfg(sample_sheet=str(sheet)))
    assert_refused(ei, f"{sheet} line 3", "'path'", "short row")
    sheet.write_text("slide_id,path,mpp\nA1,a,b.svs,0.25\n")  # unquoted comma
    with pytest.raises(ConfigError) as ei:
        list_slides(_cfg(sample_sheet=str(sheet)))
    assert_refused(ei, f"{sheet} line 2", "4 fields", "quote")
    sheet.write_text("slide_id,path,mpp\nA1,a.svs,nan\n")
    with pytest.raises(ConfigError, match=r"line 2: mpp 'nan' is not a positive number"):
        list_slides(_cfg(sample_sheet=str(sheet)))
    sheet.write_text("slide_id,path\nA1,a.svs\nA1,b.svs\n")
    with pytest.raises(ConfigError, match=r"line 3: slide id 'A1' is already on line 2"):
        list_slides(_cfg(sample_sheet=str(sheet)))


def test_sample_sheet_bom_and_missing_slide_file_accepted(tmp_path):
    """A missing slide file does not stop the DAG: list_slides keeps it, the chunk job
    quarantines it (state record)."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"\xef\xbb\xbfslide_id,path\r\nA1,gone/a.svs\r\n\r\nB1,b.svs,\r\n")
    slides = list_slides(_cfg(sample_sheet=str(sheet)))
    assert list(slides) == ["A1", "B1"] and not slides["A1"].path.exists()
    assert slides["A1"].path == tmp_path / "gone" / "a.svs"


@pytest.mark.parametrize("data,needle", [
    (b"slide_id,mpp\nA,0.25\n\x00\x01\x02\x03binary\n", "line 3: binary data"),
    (b"slide_id,mpp\nA,0.25\nB,0.5\xb5m\n", "line 3: byte 0xb5 is not UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "line 3: binary data")])
def test_binary_mpp_csv_names_file(tmp_path, data, needle):
    p = tmp_path / "mpp.csv"
    p.write_bytes(data)
    with pytest.raises(ConfigError) as ei:
        read_mpp_overrides(p)
    assert_refused(ei, str(p), needle, "UTF-8")
    # at Snakefile parse time (list_slides checks every table the config names)
    (tmp_path / "a.svs").write_bytes(b"x")
    with pytest.raises(ConfigError, match="mpp.csv line"):
        list_slides(_cfg(dir=str(tmp_path), mpp_overrides=str(p)))


def test_mpp_overrides_duplicates_and_unknown_ids(tmp_path, caplog):
    from pathgen.tiling.pipeline import mpp_overrides_for_run

    p = tmp_path / "mpp.csv"
    p.write_text("slide_id,mpp\nA,0.25\nB,0.5\nA,0.26\n")
    with pytest.raises(ConfigError) as ei:
        read_mpp_overrides(p)
    assert_refused(ei, f"{p} line 4", "'A'", "line 2", "0.25", "0.26", "one row per slide")
    p.write_text("slide_id,mpp\nA,0.25\nA,0.250\nTypo,0.5\nB,\n")  # equal duplicate: fine
    assert read_mpp_overrides(p) == {"A": 0.25, "Typo": 0.5}
    cfg = _cfg(dir=str(tmp_path), mpp_overrides=str(p))
    recs = [SlideRecord("A", tmp_path / "A.svs"), SlideRecord("B", tmp_path / "B.svs")]
    with caplog.at_level(logging.WARNING, logger="pathgen.slides"):
        got = mpp_overrides_for_run(cfg, recs)
    assert got["A"][0] == 0.25 and got["B"][0] is None
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert f"'Typo' ({p} line 4)" in warned and "not among this run's 2 slides" in warned
    p.write_text("slide_id,mpp\n../etc,0.25\n")
    with pytest.raises(ConfigError, match=r"mpp\.csv line 2, column slide_id"):
        read_mpp_overrides(p)


def test_dataset_file_ids_table_checked(tmp_path):
    p = tmp_path / "ids.csv"
    p.write_text("slide_id,file_id\nA,u1\nA,u2\n")
    with pytest.raises(ConfigError, match=r"ids\.csv line 3: file_id for slide 'A'"):
        read_file_ids(p)
    (tmp_path / "A.svs").write_bytes(b"x")
    cfg = validate_config({"demo": {"enabled": False}, "slides": {"dir": str(tmp_path)},
                           "dataset": {"file_ids": str(p)}})
    with pytest.raises(ConfigError, match=r"ids\.csv line 3"):
        list_slides(cfg)  # parse time, not the build_dataset job
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"slide_id,path,file_id\nA,a.svs,\xff\n")
    with pytest.raises(ConfigError, match=r"sheet\.csv line 2: byte 0xff"):
        file_ids_from_sheet(sheet)


# -- recovery after snakemake itself is killed -------------------------------------------------

SNAKEFILE = """
rule all:
    input: "out/b.txt"

rule a:
    output: "out/a.txt"
    script: "job.py"

rule b:
    input: "out/a.txt"
    output: "out/b.txt"
    run:
        open(output[0], "w").write(open(input[0]).read() + "b\\n")
"""

JOB = """
import os, time
from pathlib import Path
out = Path(snakemake.output[0])
out.write_text("half-written\\n")  # a partial output, as a killed job leaves it
Path("started").write_text(str(os.getpid()))
while not Path("go").exists():
    time.sleep(0.2)
out.write_text("a\\n")
"""


def _snakemake(wd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "snakemake", "--cores", "1", *args], cwd=wd,
                          capture_output=True, text=True, timeout=timeout, env=ENV)


def _recover(wd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "pathgen.cli", "recover"], cwd=wd, capture_output=True,
                          text=True, timeout=120, env=ENV)


def _locks(wd: Path) -> list[Path]:
    d = wd / ".snakemake" / "locks"
    return list(d.iterdir()) if d.exists() else []


def _wait_for(path: Path, seconds: float = 90) -> None:
    t0 = time.time()
    while not path.exists():
        if time.time() - t0 > seconds:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.2)


def test_workflow_profile_is_snakemakes_default_and_has_rerun_incomplete(tmp_path):
    prof = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert prof["rerun-incomplete"] is True
    (tmp_path / "config.yaml").write_text("demo: {n_slides: 2}\n")
    proc = subprocess.run([PY, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                           str(tmp_path), "--list-rules"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"workflow specific profile {REPO / 'profiles' / 'default'}" in proc.stderr


def test_kill9_snakemake_then_recover_and_rerun(tmp_path):
    wd = tmp_path / "wf"
    wd.mkdir()
    (wd / "Snakefile").write_text(SNAKEFILE)
    (wd / "job.py").write_text(JOB)
    # the repo's workflow profile beside the Snakefile, where Snakemake looks for it
    (wd / "profiles" / "default").mkdir(parents=True)
    shutil.copy(REPO / "profiles" / "default" / "config.yaml", wd / "profiles" / "default")
    sm = subprocess.Popen([PY, "-m", "snakemake", "--cores", "1"], cwd=wd, env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    job_pid = None
    try:
        _wait_for(wd / "started")
        job_pid = int((wd / "started").read_text())
        # while snakemake runs: recover refuses and names it
        live = _recover(wd)
        assert live.returncode == 1 and f"PID {sm.pid}" in live.stdout, live.stdout + live.stderr
        assert "nothing changed" in live.stdout
        os.kill(sm.pid, signal.SIGKILL)  # snakemake itself; its job lives on as an orphan
        sm.wait(timeout=30)
        # the orphaned job still writes out/a.txt: recover refuses, naming the job's PID
        orphan = _recover(wd)
        assert orphan.returncode == 1 and f"PID {job_pid}" in orphan.stdout, orphan.stdout
        assert _locks(wd)  # lock untouched
        os.kill(job_pid, signal.SIGKILL)
        _wait_gone(job_pid)
    finally:
        with_suppress_kill(sm.pid)
        if job_pid:
            with_suppress_kill(job_pid)
    # "rerun the same command" without recovery: the stale lock
    plain = _snakemake(wd)
    assert plain.returncode != 0 and "LockException" in plain.stderr, plain.stderr[-2000:]
    rec = _recover(wd)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert "stale lock" in rec.stdout and "snakemake --unlock" in rec.stdout
    assert "unlocked" in rec.stdout and "marked incomplete" in rec.stdout
    assert not _locks(wd)
    (wd / "go").write_text("")
    # without the workflow profile the half-written output stops the rerun ...
    noprof = _snakemake(wd, "--workflow-profile", "none")
    assert noprof.returncode != 0 and "IncompleteFilesException" in noprof.stderr
    # ... with it (the plain command) the rerun redoes it and finishes
    rerun = _snakemake(wd)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "workflow specific profile" in rerun.stderr
    assert (wd / "out" / "a.txt").read_text() == "a\n"
    assert (wd / "out" / "b.txt").read_text() == "a\nb\n"
    again = _recover(wd)  # nothing left to do: says so, changes nothing
    assert again.returncode == 0 and "nothing to unlock" in again.stdout


def _wait_gone(pid: int, seconds: float = 30) -> None:
    t0 = time.time()
    while Path(f"/proc/{pid}").exists() and time.time() - t0 < seconds:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return
        except OSError:
            return
        time.sleep(0.1)


def with_suppress_kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def test_recover_process_matching():
    from pathgen.runner.recover import Proc, is_snakemake, live_users

    assert is_snakemake(["/v/bin/python", "/v/bin/snakemake", "--cores", "2"])
    assert is_snakemake(["python3", "-m", "snakemake"]) and is_snakemake(["snakemake", "-n"])
    assert is_snakemake(["/v/bin/python", "/w/.snakemake/scripts/tmpab.tile.py"])
    assert not is_snakemake(["bash", "-c", "snakemake --cores 2 && echo"])
    assert not is_snakemake(["vim", "Snakefile"]) and not is_snakemake([])
    wd = Path("/nonexistent/wd")
    procs = [Proc(11, 0, wd, ["snakemake", "--cores", "1"]),
             Proc(12, 0, Path("/elsewhere"), ["snakemake", "--directory", str(wd)]),
             Proc(13, 0, Path("/elsewhere"), ["snakemake"]),
             Proc(14, 0, wd, ["vim", "Snakefile"])]
    assert [p.pid for p, _ in live_users(wd, procs)] == [11, 12]
