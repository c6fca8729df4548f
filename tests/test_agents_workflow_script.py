"""Rule agents_build_data's script runs on what the rule passes it (params, input, output,
log), never on the workflow config: the stand-in below has no ``config``. (agents_train's
script: tests/test_agents_train.py, which has the tiny model.)"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

from pathgen.agents.stage import build_stage
from pathgen.agents.workflow import build_data_params
from pathgen.config import validate_config
from pathgen.config.agents import AgentsDataConfig
from pathgen.config.captioning import CaptioningConfig
from pathgen.paths import Layout
from pathgen_testkit.chunk_outcomes import write_chunk
from pathgen_testkit.toy_captions import write_toy_captions

REPO = Path(__file__).resolve().parent.parent


def _workspace(tmp_path, teacher: str):
    cfg = validate_config({"results_dir": str(tmp_path / "results"), "demo": {"enabled": True}, "agents": {
        "enabled": True, "data": {"teacher": teacher, "min_words": 3, "val_fraction": 0.3, "seed": 1}}})
    L = Layout(cfg)
    files, patches = write_toy_captions(L.features_dir())  # selection/ is the run's already
    assert patches == L.selection_patches_root()
    (L.features_dir() / "captions").rename(L.captions_dir())
    # slide_c's captioning failed (quarantined): build-data uses the other two
    chunk = write_chunk(tmp_path / "chunk_00000.json", "caption",
                        {"slide_a": "done", "slide_b": "done", "slide_c": "failed"})
    return cfg, L, chunk


def _run_script(tmp_path, cfg, L, chunk) -> dict:
    params = build_data_params(cfg)
    sm = SimpleNamespace(log=[str(tmp_path / "log.txt")], wildcards=SimpleNamespace(),
                         input=SimpleNamespace(captions=[str(chunk)]),
                         output=SimpleNamespace(**{k: str(v) for k, v in L.agents_data_files(L.agents_data_dir).items()}),
                         params=SimpleNamespace(**params))
    runpy.run_path(str(REPO / "workflow_scripts" / "agents_build_data.py"), init_globals={"snakemake": sm})
    return json.loads(L.agents_data_files(L.agents_data_dir)["card"].read_text())


def _slides(data_dir: Path) -> set[str]:
    files = Layout.agents_data_files(data_dir)
    return {Path(r["image"]).parent.name for k, p in files.items() if k != "card" for r in json.loads(p.read_text())}


def test_script_builds_from_the_finished_slides_caption_records(tmp_path):
    cfg, L, chunk = _workspace(tmp_path, "captions")
    card = _run_script(tmp_path, cfg, L, chunk)
    assert card["teacher"] == "files:describe" and _slides(L.agents_data_dir) == {"slide_a", "slide_b"}
    # the same as the stage called directly (what `pathgen agents build-data` does)
    direct = build_stage(cfg.agents.data, cfg.captioning, [L.captions(s) for s in ("slide_a", "slide_b")],
                         tmp_path / "direct", L.selection_patches_root(), target_mpp=cfg.tiling.geometry()[1])
    assert direct["n"] == card["n"] and sum(card["n"].values()) > 0
    for name in ("describe_train", "revise_val"):
        assert Layout.agents_data_files(L.agents_data_dir)[name].read_text() == \
            Layout.agents_data_files(tmp_path / "direct")[name].read_text()


def test_script_with_a_backend_teacher_describes_the_selected_patches(tmp_path):
    """teacher 'backend' (the offline morphometric baseline, not a language model): the
    script reads the selection CSVs of the finished slides from the params' folder."""
    cfg, L, chunk = _workspace(tmp_path, "backend")
    card = _run_script(tmp_path, cfg, L, chunk)
    assert card["teacher"].startswith("backend:morphometric:")
    assert _slides(L.agents_data_dir) == {"slide_a", "slide_b"}


def test_params_round_trip_and_name_what_shapes_the_data(tmp_path):
    cfg = validate_config({"results_dir": str(tmp_path / "r"), "demo": {"enabled": True},
                           "agents": {"enabled": True, "data": {"corrupter": "llm"}},
                           "captioning": {"backend": "openai", "agents": {"summarize": {"max_tokens": 50}}}})
    s = build_data_params(cfg)["settings"]
    assert AgentsDataConfig.model_validate(s["data"]) == cfg.agents.data
    assert CaptioningConfig.model_validate(s["captioning"]) == cfg.captioning
    assert s["target_mpp"] == cfg.tiling.geometry()[1]
    finer = validate_config({"results_dir": str(tmp_path / "r"), "demo": {"enabled": True},
                             "tiling": {"target_mpp": 0.25}})
    assert build_data_params(finer)["settings"]["target_mpp"] == 0.25
