"""End to end: the real Snakefile on a tiny demo, from synthetic slides to the report."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
from workspace import REPO, Workspace  # noqa: E402

pytestmark = pytest.mark.slow


def tiny_demo_config() -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["demo"].update(n_slides=8, width_px=2048, height_px=1536, holdout_fraction=0.25)
    cfg["training"].update(epochs=2)
    cfg["evaluation"]["mil"].update(models=["abmil"], epochs=3)
    cfg["evaluation"]["mil"]["tasks"]["demo_tumor"].update(folds=2)
    cfg["evaluation"]["zeroshot"].update(bootstrap=50)
    return cfg


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("e2e"))
    ws.write_config(**tiny_demo_config())
    ws.snakemake("--cores", "2", timeout=1500)
    return ws


def test_every_stage_produced_its_outputs(demo_run):
    res = demo_run.root / "results"
    coords = sorted(res.glob("tiles/*/coords/*.h5"))
    assert len(coords) == 8
    with h5py.File(coords[0]) as f:
        assert f["coords"].dtype == "int64" and f["coords"].attrs["patch_size_level0"] > 0
    card = json.loads((res / "dataset" / "dataset_card.json").read_text())
    assert card["n_pairs"] > 0 and card["caption_tokens"]["max"] <= 77
    zs = pd.read_csv(res / "eval" / "zeroshot" / "table.csv")
    assert {"pathgen-demo-clip", "tiny-demo"} <= set(zs["model"])
    assert (res / "eval" / "mil" / "mil_table.csv").exists()
    instruct = json.loads((res / "instruct" / "pathgen_instruct.json").read_text())
    assert instruct and all(r["conversations"][0]["value"].startswith("<image>") for r in instruct)


def test_summary_report_has_every_section(demo_run):
    page = (demo_run.root / "results" / "report" / "summary.html").read_text()
    for title in ("Caption dataset", "CLIP training", "Zero-shot classification", "Slide-level MIL",
                  "Instruction data", "Configuration used"):
        assert f"<h2>{title}</h2>" in page
    assert "data:image/png;base64," in page  # figures are embedded


def test_nothing_left_to_do_and_snakemake_report(demo_run):
    dry = demo_run.snakemake("-n", "--cores", "1", timeout=300)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    demo_run.snakemake("--cores", "1", "--report", "report.zip", timeout=600)
    assert (demo_run.root / "report.zip").stat().st_size > 10_000


def test_cli_entry_point_matches_workflow(demo_run):
    out = subprocess.run([sys.executable, "-m", "pathgen.cli", "validate-config", "--config",
                          str(demo_run.config_path)], capture_output=True, text=True, cwd=demo_run.root)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["demo"]["n_slides"] == 8
