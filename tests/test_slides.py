"""Slide discovery: recursive globs, sample sheets, safe ids, duplicates."""

import pytest

from pathgen.config import ConfigError, validate_config
from pathgen.cohort import list_slides, read_mpp_overrides


def _cfg(**slides):
    return validate_config({"demo": {"enabled": False}, "slides": slides})


def test_dir_recursive_and_case_insensitive(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "S1.SVS").write_bytes(b"x")
    (tmp_path / "S2.tiff").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("no")
    (tmp_path / ".hidden.svs").write_bytes(b"x")
    slides = list_slides(_cfg(dir=str(tmp_path)))
    assert sorted(slides) == ["S1", "S2"]


def test_unsafe_name_rejected(tmp_path):
    (tmp_path / "bad name;rm.svs").write_bytes(b"x")
    with pytest.raises(ConfigError, match="bad name;rm"):
        list_slides(_cfg(dir=str(tmp_path)))


def test_duplicate_ids_rejected(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "S1.svs").write_bytes(b"x")
    with pytest.raises(ConfigError, match="duplicate slide id 'S1'"):
        list_slides(_cfg(dir=str(tmp_path)))


def test_sample_sheet(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("slide_id,path,mpp,case_id,label\nA1,imgs/a.svs,0.25,P1,tumor\nB1,/abs/b.ndpi,,P2,normal\n")
    slides = list_slides(_cfg(sample_sheet=str(sheet)))
    assert slides["A1"].path == tmp_path / "imgs" / "a.svs"
    assert slides["A1"].mpp == 0.25 and slides["A1"].case_id == "P1"
    assert slides["B1"].mpp is None and str(slides["B1"].path) == "/abs/b.ndpi"


def test_sample_sheet_missing_columns(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("id,file\nA,a.svs\n")
    with pytest.raises(ConfigError, match="slide_id,path"):
        list_slides(_cfg(sample_sheet=str(sheet)))


def test_dir_and_sheet_exclusive(tmp_path):
    with pytest.raises(ConfigError, match="either slides.dir or slides.sample_sheet"):
        _cfg(dir=str(tmp_path), sample_sheet=str(tmp_path / "s.csv"))


def test_demo_ids_when_enabled():
    cfg = validate_config({"demo": {"n_slides": 3}})
    assert list(list_slides(cfg)) == ["demo_000", "demo_001", "demo_002"]


def test_mpp_overrides(tmp_path):
    p = tmp_path / "mpp.csv"
    p.write_text("slide_id,mpp\nA,0.25\nB,\n")
    assert read_mpp_overrides(p) == {"A": 0.25}
    with pytest.raises(ConfigError, match="does not exist"):
        read_mpp_overrides(tmp_path / "missing.csv")


def test_mpp_overrides_bad_number(tmp_path):
    p = tmp_path / "mpp.csv"
    p.write_text("slide_id,mpp\nA,abc\n")
    with pytest.raises(ConfigError, match="line 2: mpp 'abc'"):
        read_mpp_overrides(p)
