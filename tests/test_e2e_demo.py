"""End to end: the real Snakefile on a tiny demo, from synthetic slides to the report."""

import json
import subprocess
import sys

import h5py
import pandas as pd
import pytest
import yaml

from pathgen.config.layers import with_demo_overlay

from pathgen_testkit.workspace import REPO, Workspace, parse_jobs

pytestmark = pytest.mark.slow


def tiny_demo_config() -> dict:
    cfg = with_demo_overlay(yaml.safe_load((REPO / "config.yaml").read_text()))
    # 10 slides: holdout demo_004 (normal) + demo_008 (tumor); chunks of 5
    cfg["demo"].update(n_slides=10, width_px=2048, height_px=1536, holdout_fraction=0.25)
    cfg["training"].update(epochs=2)
    cfg["cluster"].update(chunk_size=5)
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
    assert len(coords) == 10
    with h5py.File(coords[0]) as f:
        assert f["coords"].dtype == "int64" and f["coords"].attrs["patch_size_level0"] > 0
    card = json.loads((res / "dataset" / "dataset_card.json").read_text())
    assert card["n_pairs"] > 0 and card["caption_tokens"]["max"] <= 77
    zs = pd.read_csv(res / "eval" / "zeroshot" / "table.csv")
    assert {"pathgen-demo-clip", "pathgen-demo-clip-slide_text", "tiny-demo"} <= set(zs["model"])
    mil = pd.read_csv(res / "eval" / "mil" / "mil_table.csv")
    assert set(mil["encoder"]) == {"pathgen-demo-clip", "pathgen-demo-clip-slide_text"}
    base = json.loads((res / "training" / "baselines" / "slide_text" / "final.json").read_text())
    assert base["baseline"] == "slide_text" and "pathgen-demo-clip-slide_text" in base["encoder"]
    instruct = json.loads((res / "instruct" / "pathgen_instruct.json").read_text())
    assert instruct and all(r["conversations"][0]["value"].startswith("<image>") for r in instruct)


def test_no_demo_caption_contains_a_benchmark_class_text(demo_run):
    """The captions describe morphology in their own words: a zero-shot score cannot come from
    copying the benchmark's class texts (classes.json of the demo benchmark)."""
    res = demo_run.root / "results"
    texts = json.loads((res / "demo" / "zeroshot" / "classes.json").read_text()).values()
    captions = pd.read_csv(res / "dataset" / "open_clip.csv", sep="\t")["title"]
    baseline = pd.read_csv(res / "training" / "baselines" / "slide_text" / "data" / "open_clip.csv",
                           sep="\t")["title"]
    assert len(captions) > 0 and len(baseline) == len(captions)
    hits = [(t, c) for c in list(captions) + list(baseline) for t in texts if t.lower() in c.lower()]
    assert not hits, hits[:5]


def test_summary_report_has_every_section(demo_run):
    page = (demo_run.root / "results" / "report" / "summary.html").read_text()
    for title in ("Caption dataset", "CLIP training", "Captions vs baselines",
                  "Zero-shot classification", "Slide-level MIL",
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
    assert yaml.safe_load(out.stdout)["demo"]["n_slides"] == 10


TRAINED = ("features_pathgen-demo-clip", "features_pathgen-demo-clip-slide_text")


def _records(ws: Workspace, trained: bool = False) -> dict[tuple[str, str], dict]:
    """State records by (stage, slide); ``trained``: only those of the trained CLIPs' features
    (redone for every slide whenever the CLIPs are retrained), else all others."""
    res = ws.root / "results"
    out = {}
    for f in res.rglob("state/*.json"):
        if (f.parent.parent.name in TRAINED) != trained:
            continue
        rec = json.loads(f.read_text())
        out[(f.parent.parent.name if trained else rec["stage"], rec["slide_id"])] = rec
    return out


def test_adding_two_slides_reruns_only_their_work_and_the_aggregates(demo_run):
    """The incremental contract on the finished demo: 10 -> 12 slides (neither is held out).
    Per-slide work runs for the 2 new slides only (their chunk); demo slides already drawn are
    not redrawn; zero-shot of the unchanged random-init model does not rerun; MIL folds keep
    every earlier patient where it was."""
    before = _records(demo_run)
    folds_before = (demo_run.root / "results/eval/mil/demo_tumor/splits/fold_assignment.csv")
    folds_before = folds_before.read_text() if folds_before.exists() else None
    demo_run.config["demo"]["n_slides"] = 12
    demo_run.write_config()
    jobs = parse_jobs(demo_run.dry_run(quiet=False).text)
    by_rule: dict[str, list] = {}
    for rule, wc, _ in jobs:
        by_rule.setdefault(rule, []).append(wc)
    chunked = {"make_demo_slide", "tile", "extract_features", "select_patches", "caption"}
    # demo_010 and demo_011 open chunk_00002 (chunks 0 and 1 are full)
    for rule in chunked:
        assert [wc.get("chunk") for wc in by_rule.get(rule, [])] == ["chunk_00002"], (rule, by_rule)
    zs = [wc for wc in by_rule.get("zeroshot", [])]
    # both CLIPs are retrained on the grown set; tiny-demo: same model, same data
    assert sorted(wc["model"] for wc in zs) == ["pathgen-demo-clip", "pathgen-demo-clip-slide_text"], zs
    assert "demo_benchmark" not in by_rule  # the holdout set did not change
    expected = chunked | {"demo_labels", "build_dataset", "train_clip", "zeroshot", "zeroshot_table",
                          "mil_splits", "mil", "mil_table", "build_instruct", "build_report", "all",
                          "baseline_data", "train_baseline", "extract_model_features"}
    assert set(by_rule) == expected, set(by_rule) ^ expected

    trained_before = _records(demo_run, trained=True)
    demo_run.snakemake("--cores", "2", timeout=1500)
    after = _records(demo_run)
    trained_after = _records(demo_run, trained=True)
    assert len(trained_after) == 24 and all(  # new weights: every slide's features redone
        trained_before.get(k, {}).get("finished") != r["finished"] for k, r in trained_after.items())
    changed = {k for k, r in after.items() if before.get(k, {}).get("finished") != r.get("finished")}
    assert {s for _, s in changed} == {"demo_010", "demo_011"}, sorted(changed)
    assert {st for st, _ in changed} == {"demo", "tile", "features", "select", "caption"}
    assert all(r["status"] == "done" for r in after.values())
    if folds_before is not None:
        old = {tuple(line.split(",")[:2]) for line in folds_before.splitlines()[1:]}
        now = (demo_run.root / "results/eval/mil/demo_tumor/splits/fold_assignment.csv").read_text()
        assert old <= {tuple(line.split(",")[:2]) for line in now.splitlines()[1:]}
    card = json.loads((demo_run.root / "results" / "dataset" / "dataset_card.json").read_text())
    assert card["n_slides"] == 10  # 12 slides minus the 2 held out
