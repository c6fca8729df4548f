"""Rule build_report runs on its params (settings shown, slides, QC images, stage folders) and
input (chunk outcome files), never on the workflow config, and writes what `pathgen report`
writes; a spare encoder definition is not part of what it shows."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from pathgen.config import validate_config
from pathgen.paths import Layout
from pathgen.report.cli import inputs_for
from pathgen.report.workflow import report_params, shown_config

REPO = Path(__file__).resolve().parent.parent


def _run_dir(tmp_path):
    cfg = validate_config({"results_dir": str(tmp_path / "res"), "demo": {"enabled": False},
                           "slides": {"dir": str(tmp_path)},  # real slides: no demo encoders
                           "encoders": {"mine": {"kind": "open_clip", "arch": "pathgen-tiny-vit"}},
                           "features": {"encoder": "mine"}})
    L = Layout(cfg)
    slides = ["s1", "s2", "s3"]
    for k, s in enumerate(slides):
        L.tiling_qc(s).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(L.tiling_qc(s))
    chunk = L.stage_dir("tile") / "chunks" / "chunk_00000.json"
    chunk.parent.mkdir(parents=True)
    chunk.write_text(json.dumps({"stage": "tile", "members": [
        {"slide_id": "s1", "status": "failed", "error": "unreadable file"},
        {"slide_id": "s2", "status": "done"}, {"slide_id": "s3", "status": "done"}]}))
    return cfg, slides, chunk


def test_script_uses_params_and_input_only(tmp_path):
    cfg, slides, chunk = _run_dir(tmp_path)
    inp = inputs_for(cfg, slides, chunk_files=[str(chunk)])
    assert [p["slide_id"] for p in inp.slide_problems] == ["s1"]
    assert [p.stem for p in inp.qc_images] == ["s2", "s3"]  # the failed slide's QC is not shown
    from pathgen.report.build import build_report

    want = tmp_path / "cli.html"
    build_report(inp, want, Layout(cfg).report_figures_dir)
    got = tmp_path / "rule.html"
    sm = SimpleNamespace(log=[str(tmp_path / "r.log")], wildcards=SimpleNamespace(), output=[str(got)],
                         input=[str(chunk), str(tmp_path / "res" / "other.csv")],
                         params=SimpleNamespace(report=report_params(cfg, slides)))
    runpy.run_path(str(REPO / "workflow_scripts" / "build_report.py"), init_globals={"snakemake": sm})
    html = got.read_text()
    assert html == want.read_text()
    assert "unreadable file" in html and "pathgen-tiny-vit" in html


def test_shown_config_drops_execution_settings_and_spare_encoders(tmp_path):
    cfg, slides, _ = _run_dir(tmp_path)
    spare = cfg.model_copy(update={"encoders": {**cfg.encoders, "spare": cfg.encoders["mine"]}})
    assert shown_config(spare) == shown_config(cfg)  # a definition nothing names shapes nothing
    assert set(shown_config(cfg)["encoders"]) == {"mine"}
    assert "resources" not in shown_config(cfg) and "cluster" not in shown_config(cfg)
    renamed = cfg.model_copy(update={"features": cfg.features.model_copy(update={"encoder": "tiny-demo"})})
    assert shown_config(renamed)["encoders"] == {}  # no longer named: not shown
    assert report_params(cfg, slides)["qc_images"]["s2"] == str(Layout(cfg).tiling_qc("s2"))
