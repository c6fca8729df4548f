"""Every setting that shapes an output is in its rule's params: editing the *definition* of
the selection text encoder or of the caption filters' alignment encoder (not only its name)
reruns exactly the jobs it shapes, and nothing upstream."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pathgen_testkit.workspace import Workspace, fake_slide_workspace, make_finished_state, parse_jobs

ENCODERS = {"text-enc": {"kind": "open_clip", "arch": "pathgen-tiny-vit"},
            "align-enc": {"kind": "open_clip", "arch": "pathgen-tiny-vit"}}
DOWNSTREAM_OF_CAPTIONS = {"build_dataset", "train_clip", "build_instruct", "zeroshot",
                          "zeroshot_table", "build_report", "all"}


def build_workspace(root: Path) -> Workspace:
    """The `ws` fixture's workspace (tests/conftest.py: a finished run, shared by the module)."""
    bench = root / "zs_bench"  # a user's ImageFolder benchmark (an input)
    (bench / "tumor").mkdir(parents=True)
    zeroshot = {"benchmarks": {"zs": {"root": str(bench), "layout": "imagefolder"}},
                "models": ["text-enc"]}
    return fake_slide_workspace(root / "ws", 3, encoders=ENCODERS,
                                cluster={"chunk_size": 2}, selection={"text_encoder": "text-enc"},
                                captioning={"filters": {"alignment_encoder": "align-enc"}},
                                evaluation={"mil": {"enabled": False}, "zeroshot": zeroshot})


def rules_after(ws, **encoder_edit) -> set[str]:
    saved = {k: dict(v) for k, v in ws.config["encoders"].items()}
    for name, update in encoder_edit.items():
        ws.config["encoders"][name].update(update)
    ws.write_config()
    try:
        return {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)}
    finally:
        ws.config["encoders"] = saved
        ws.write_config()


def test_text_encoder_definition_reruns_selection_and_what_follows(ws):
    rules = rules_after(ws, **{"text-enc": {"arch": "ViT-B-16"}})
    assert {"select_patches", "caption", "build_dataset"} <= rules, rules
    assert not rules & {"tile", "extract_features"}, rules
    assert rules <= {"select_patches", "caption"} | DOWNSTREAM_OF_CAPTIONS, rules


def test_alignment_encoder_definition_reruns_captions_only(ws):
    rules = rules_after(ws, **{"align-enc": {"arch": "ViT-B-16"}})
    assert {"caption", "build_dataset"} <= rules, rules
    assert not rules & {"tile", "extract_features", "select_patches"}, rules
    assert rules <= {"caption"} | DOWNSTREAM_OF_CAPTIONS, rules


def test_unrelated_encoder_definition_reruns_nothing(ws):
    ws.config["encoders"]["spare"] = {"kind": "open_clip", "arch": "ViT-B-16"}
    ws.write_config()
    try:
        assert {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)} <= {"all"}
    finally:
        del ws.config["encoders"]["spare"]
        ws.write_config()


def test_zeroshot_setting_reruns_zeroshot_and_its_tables_only(ws):
    """A zero-shot setting (bootstrap resamples) is in rule zeroshot's params."""
    saved = copy.deepcopy(ws.config)
    ws.write_config(evaluation={"zeroshot": {"bootstrap": 7}})
    try:
        rules = {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)}
    finally:
        ws.config = saved
        ws.write_config()
    assert "zeroshot" in rules, rules
    assert rules <= {"zeroshot", "zeroshot_table", "build_report", "all"}, rules


@pytest.fixture(scope="module")
def sheet_ws(tmp_path_factory):
    """A finished run over a sample sheet whose `file_id` column names the GDC file ids."""
    ws = fake_slide_workspace(tmp_path_factory.mktemp("sheet"), 2, evaluation={"mil": {"enabled": False}})
    slides = sorted((ws.root / "slides").glob("*.svs"))
    sheet = ws.root / "sheet.csv"
    sheet.write_text("slide_id,path,file_id\n" + "".join(f"{p.stem},{p},uuid-{i}\n" for i, p in enumerate(slides)))
    ws.config["slides"] = {"sample_sheet": str(sheet), "default_mpp": 0.5}
    ws.write_config()
    return make_finished_state(ws), sheet


def test_sample_sheet_file_ids_rerun_the_dataset_only(sheet_ws):
    """The file ids are rule build_dataset's params (read from the sheet when the DAG is
    built): editing one rebuilds the dataset and what reads it, nothing upstream."""
    ws, sheet = sheet_ws
    before = sheet.read_text()
    sheet.write_text(before.replace("uuid-1", "uuid-1-fixed"))
    try:
        rules = {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)}
    finally:
        sheet.write_text(before)
    assert "build_dataset" in rules, rules
    assert rules <= DOWNSTREAM_OF_CAPTIONS, rules
    assert {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)} <= {"all"}  # restored: settled
