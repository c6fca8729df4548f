"""What shapes a selection is in rule select_patches' params (issue 13): the summarize agent's
chat model when report findings come from the LLM (it also drives build_instruct's llm
generator), and each slide's cancer type from the sample sheet (only that slide's chunk)."""

from __future__ import annotations

import copy
from pathlib import Path

from pathgen_testkit.workspace import Workspace, fake_slide_workspace, parse_jobs

N_SLIDES = 3


def _sheet(ws, types: list[str]) -> None:
    slides = sorted((ws.root / "slides").glob("*.svs"))
    rows = [f"{p.stem},{p},{t}" for p, t in zip(slides, types)]
    (ws.root / "sheet.csv").write_text("slide_id,path,cancer_type\n" + "\n".join(rows) + "\n")


def build_workspace(root: Path) -> Workspace:
    """The `ws` fixture's workspace (tests/conftest.py: a finished run, shared by the module)."""
    ws = fake_slide_workspace(root, N_SLIDES, cluster={"chunk_size": 2},
                              evaluation={"mil": {"enabled": False}})
    _sheet(ws, ["LUAD", "BRCA", "COAD"])
    (ws.root / "reports.csv").write_text('slide_id,report\nTCGA-FAKE-00000,"Acinar glands."\n')
    ws.config["slides"] = {"sample_sheet": str(ws.root / "sheet.csv"), "default_mpp": 0.5}
    ws.write_config(selection={"reports": str(ws.root / "reports.csv"), "report_extractor": "llm"},
                    captioning={"agents": {"summarize": {"backend": "openai", "model": "lm-a"}}},
                    instruct={"generator": "llm"})
    return ws


def _jobs(ws) -> list[tuple[str, dict]]:
    return [(r, wc) for r, wc, _ in parse_jobs(ws.dry_run(quiet=False).text)]


def test_summarize_model_reruns_llm_selection_and_instruct(ws):
    saved = copy.deepcopy(ws.config)
    ws.write_config(captioning={"agents": {"summarize": {"model": "lm-b"}}})
    try:
        rules = {r for r, _ in _jobs(ws)}
    finally:
        ws.config = saved
        ws.write_config()
    assert {"select_patches", "build_instruct"} <= rules, rules
    assert not rules & {"tile", "extract_features"}, rules


def test_a_slides_cancer_type_reruns_only_its_chunk(ws):
    _sheet(ws, ["LUSC", "BRCA", "COAD"])
    try:
        select = [wc.get("chunk") for r, wc in _jobs(ws) if r == "select_patches"]
    finally:
        _sheet(ws, ["LUAD", "BRCA", "COAD"])
    assert len(select) == 1, select  # the chunk holding TCGA-FAKE-00000, not the other one
