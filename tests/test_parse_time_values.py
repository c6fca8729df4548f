"""Values the rules compute at Snakefile parse for every slide (30k slides: issue 19's `snakemake
-n` in seconds) are made in one pass, and are the same values the per-slide helpers give:
they are rule params, so any difference would rerun every job of a finished run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pathgen.config import validate_config
from pathgen.paths import Layout
from pathgen.report.workflow import report_params
from pathgen.selection.runner import slide_cancer_type
from pathgen.selection.workflow import cancer_types
from pathgen.tiling.files import qc_file, qc_files

IDS = ["TCGA-A1-0001-01Z-00-DX1.8F9C1E2A", "s1", "S_2", "a.b-c", "0x", "slide.partialx"]


@pytest.mark.parametrize("tiles", ["/r/tiles/256um_0.5mpp_t50", "/r/tiles/t/", "rel/tiles//t",
                                   Path("/r/tiles/t")])
def test_qc_files_are_qc_file_per_slide(tiles):
    assert qc_files(tiles, IDS) == {s: str(qc_file(tiles, s)) for s in IDS}


def test_report_params_name_each_slides_qc_image_as_the_layout_does(tmp_path):
    cfg = validate_config({"results_dir": str(tmp_path / "res"), "demo": {"enabled": False},
                           "slides": {"dir": str(tmp_path)}})
    qc = report_params(cfg, IDS)["qc_images"]
    assert list(qc) == IDS and qc == {s: str(Layout(cfg).tiling_qc(s)) for s in IDS}


@pytest.mark.parametrize("sheet", [None, "with_column", "without_column", "missing"])
def test_cancer_types_match_the_per_slide_lookup(tmp_path, sheet):
    data = {"results_dir": str(tmp_path / "res"), "demo": {"enabled": False},
            "selection": {"cancer_type": "GENERIC"}}
    path = tmp_path / "sheet.csv"
    if sheet == "with_column":
        path.write_text("slide_id,path,cancer_type\ns1,a.svs,BRCA\nS_2,b.svs,\na.b-c,c.svs,LUAD\n")
    elif sheet == "without_column":
        path.write_text("slide_id,path\ns1,a.svs\n")
    if sheet is not None:
        data["slides"] = {"sample_sheet": str(path)}
    else:
        data["slides"] = {"dir": str(tmp_path)}
    cfg = validate_config(data)
    if sheet == "missing":  # the sheet vanished after validation: the default for every slide
        path.unlink(missing_ok=True)
    got = cancer_types(cfg, IDS)
    assert got == {s: slide_cancer_type(cfg.selection, s, cfg.slides.sample_sheet) for s in IDS}
    if sheet == "with_column":
        assert (got["s1"], got["S_2"], got["a.b-c"], got["0x"]) == ("BRCA", "GENERIC", "LUAD", "GENERIC")
