"""Rule build_dataset's script runs on what the rule passes it (params, input, output, log),
never on the workflow config: the stand-in below has no ``config``."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

from pathgen.config import validate_config
from pathgen.config.dataset import DatasetConfig
from pathgen.cli import main
from pathgen.dataset.files import dataset_files
from pathgen.dataset.workflow import build_dataset_params
from pathgen.paths import Layout
from pathgen_testkit.caption_files import make_slide
from pathgen_testkit.chunk_outcomes import write_chunk

REPO = Path(__file__).resolve().parent.parent


def _run(script: str, **parts) -> None:
    sm = SimpleNamespace(**parts)
    runpy.run_path(str(REPO / "workflow_scripts" / script), init_globals={"snakemake": sm})


def test_script_builds_the_finished_slides_with_the_sheet_file_ids(tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("slide_id,path,file_id\nS1.a,s1.svs,uuid-1\nS2,s2.svs,uuid-2\nS3,s3.svs,uuid-3\n")
    cfg = validate_config({"results_dir": str(tmp_path / "results"), "slides": {"sample_sheet": str(sheet)},
                           "dataset": {"shard_size": 2, "gallery_size": 2}})
    L = Layout(cfg)
    files = [make_slide(L.features_dir(), s, 2, 1, start=i * 10) for i, s in enumerate(["S1.a", "S2", "S3"])]
    (L.features_dir() / "captions_test").rename(L.captions_dir())  # make_slide's folder -> the run's
    files = [L.captions_dir() / f.name for f in files]
    # S3's captioning failed (quarantined): the dataset holds the other two
    chunk = write_chunk(tmp_path / "chunk_00000.json", "caption", {"S1.a": "done", "S2": "done", "S3": "failed"})
    out = tmp_path / "dataset"
    params = build_dataset_params(cfg)
    assert params["file_ids"] == {"S1.a": "uuid-1", "S2": "uuid-2", "S3": "uuid-3"}
    _run("build_dataset.py", log=[str(tmp_path / "log.txt")], wildcards=SimpleNamespace(),
         input=SimpleNamespace(captions=[str(chunk)]),
         output=SimpleNamespace(**{k: str(p) for k, p in dataset_files(out).items()}),
         params=SimpleNamespace(out_dir=str(out), **params))
    card = json.loads(dataset_files(out)["card_json"].read_text())
    assert card["n_slides"] == 2 and card["n_pairs"] == 4
    got = json.loads(dataset_files(out)["pathgen_json"].read_text())
    assert {(r["wsi_id"], r["file_id"]) for r in got} == {("S1.a", "uuid-1"), ("S2", "uuid-2")}
    # the same as `pathgen build-dataset` on those slides' files with the same config
    sets = [f"slides.sample_sheet={sheet}", "dataset.shard_size=2", "dataset.gallery_size=2"]
    assert main(["build-dataset", *map(str, files[:2]), "--out", str(tmp_path / "cli"),
                 *[a for s in sets for a in ("--set", s)]]) == 0
    assert json.loads(dataset_files(tmp_path / "cli")["pathgen_json"].read_text()) == got


def test_params_carry_every_input_table_and_folder(tmp_path):
    """Editing a file id (sample sheet or dataset.file_ids) or the captioning tag changes the
    params, so Snakemake reruns build_dataset (the DAG-level check: test_rerun_triggers.py)."""
    sheet = tmp_path / "sheet.csv"
    ids = tmp_path / "ids.csv"
    sheet.write_text("slide_id,path,file_id\nA,a.svs,u-a\nB,b.svs,\n")
    ids.write_text("slide_id,file_id\nA,old-a\nB,t-b\n")
    raw = {"results_dir": str(tmp_path / "r"), "slides": {"sample_sheet": str(sheet)},
           "dataset": {"file_ids": str(ids)}}
    p = build_dataset_params(validate_config(raw))
    assert p["file_ids"] == {"A": "u-a", "B": "t-b"}  # the sheet wins, as in build_dataset
    assert DatasetConfig.model_validate(p["settings"]) == validate_config(raw).dataset  # round trip
    ids.write_text("slide_id,file_id\nA,old-a\nB,t-b2\n")
    assert build_dataset_params(validate_config(raw))["file_ids"]["B"] == "t-b2"
    other = build_dataset_params(validate_config({**raw, "captioning": {"token_budget": 60}}))
    assert other["captions_dir"] != p["captions_dir"] and other["features_dir"] == p["features_dir"]
