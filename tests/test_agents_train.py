"""`pathgen agents train`: LoRA (peft) on a tiny randomly initialised LLaVA built offline
(pathgen_testkit/tiny_vlm.py): the loss falls, a resumed run equals the uninterrupted one, and the merged
export loads as a plain model that captions through the transformers backend."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pathgen.config.agents import AgentsDataConfig, AgentsTrainConfig
from pathgen.agents.files import agents_checkpoint, agents_trainer_state
from pathgen.paths import Layout
from pathgen_testkit.patches import write_selection
from pathgen_testkit.tiny_vlm import build_tiny_vlm
from pathgen_testkit.toy_captions import toy_words, write_toy_captions

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(tiny VLM folder, build-data folder with 4 describe training examples on 2 slides)."""
    from pathgen.agents.build import build_data
    from pathgen.agents.split import split_slides
    from pathgen.agents.teacher import pairs_from_files
    from pathgen.captioning.prompts import load_templates

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("agents")
    vlm = build_tiny_vlm(root / "vlm", toy_words())
    files, patches = write_toy_captions(root / "teacher")
    pairs, _ = pairs_from_files(files, patches, min_words=3)
    seed = next(s for s in range(100)  # a seed that holds out exactly one of the three slides
                if list(split_slides([p.slide_id for p in pairs], 0.3, s).values()).count("val") == 1)
    card = build_data(pairs, root / "data", AgentsDataConfig(val_fraction=0.3, seed=seed),
                      load_templates(), patches)
    assert card["n"]["describe_train"] == 4 and card["n"]["describe_val"] == 2
    return vlm, root / "data"


def _tcfg(vlm, **kw) -> AgentsTrainConfig:
    base = dict(base_model=str(vlm), device="cpu", batch_size=2, learning_rate=1e-2, warmup_steps=2,
                max_length=512, lora_r=8, lora_alpha=16, lora_dropout=0.1, eval_every=3, save_every=3)
    return AgentsTrainConfig(**{**base, **kw})


def _history(run_dir: Path) -> list[dict]:
    import csv

    with Layout.agents_run_files(run_dir)["loss_csv"].open() as fh:
        return list(csv.DictReader(fh))


def test_loss_falls_on_a_toy_set(toy, tmp_path):
    from pathgen.agents.stage import train_stage

    vlm, data = toy
    s = train_stage(data, "describe", tmp_path / "run", _tcfg(vlm, max_steps=30, eval_every=10,
                                                              save_every=30), export=False)
    rows = _history(tmp_path / "run")
    losses = [float(r["train_loss"]) for r in rows]
    assert len(rows) == 30 and s["step"] == 30 and s["done"]
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses
    vals = [float(r["val_loss"]) for r in rows if r["val_loss"]]
    assert len(vals) == 3 and all(v > 0 for v in vals) and s["val_loss"] == pytest.approx(vals[-1])


@pytest.fixture(scope="module")
def straight(toy, tmp_path_factory):
    """An uninterrupted 6-step run (checkpoints every 3 steps)."""
    from pathgen.agents.train import train_agent

    vlm, data = toy
    files = Layout.agents_data_files(data)
    run = tmp_path_factory.mktemp("straight")
    s = train_agent(files["describe_train"], files["describe_val"], run, _tcfg(vlm, max_steps=6),
                    json.loads(files["card"].read_text())["image_folder"])
    return run, s


def _adapter(ckpt: Path) -> dict:
    from peft.utils import SAFETENSORS_WEIGHTS_NAME
    from safetensors.torch import load_file

    return load_file(str(ckpt / SAFETENSORS_WEIGHTS_NAME))


def test_resume_continues_where_it_stopped(toy, straight, tmp_path, caplog):
    from pathgen.agents.checkpoint import RunMismatch
    from pathgen.agents.train import train_agent

    vlm, data = toy
    files = Layout.agents_data_files(data)
    folder = json.loads(files["card"].read_text())["image_folder"]
    args = (files["describe_train"], files["describe_val"], tmp_path)
    first = train_agent(*args, _tcfg(vlm, max_steps=6), folder, stop_after=3)  # "killed" at step 3
    assert first["step"] == 3 and not first["done"]
    with caplog.at_level(logging.INFO, logger="pathgen.agents.train"):
        second = train_agent(*args, _tcfg(vlm, max_steps=6), folder)
    assert "at step 3" in caplog.text and second["step"] == 6 and second["done"]
    run, full = straight
    ours, theirs = _history(tmp_path), _history(run)
    assert [r["step"] for r in ours] == [str(i) for i in range(1, 7)]
    for a, b in zip(ours, theirs):  # same batches, learning rates and dropout masks
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
        assert float(a["lr"]) == pytest.approx(float(b["lr"]))
    wa, wb = _adapter(Path(second["checkpoint"])), _adapter(Path(full["checkpoint"]))
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    sa = torch.load(agents_trainer_state(Path(second["checkpoint"])), weights_only=False)
    sb = torch.load(agents_trainer_state(Path(full["checkpoint"])), weights_only=False)
    assert sa["step"] == sb["step"] == 6
    steps = {float(v["step"]) for v in sa["optimizer"]["state"].values()}
    assert steps == {6.0} == {float(v["step"]) for v in sb["optimizer"]["state"].values()}
    with pytest.raises(RunMismatch, match="--restart"):  # other settings never resume silently
        train_agent(*args, _tcfg(vlm, max_steps=6, learning_rate=5e-3), folder)
    again = train_agent(*args, _tcfg(vlm, max_steps=2, learning_rate=5e-3), folder, restart=True)
    assert again["step"] == 2


def test_merged_export_loads_plain_and_captions_through_the_backend(toy, straight, tmp_path):
    from safetensors import safe_open
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from pathgen.agents.export import export_merged
    from pathgen.agents.lora import load_adapter_weights, wrap_lora
    from pathgen.agents.sft import SftExample, collate, encode
    from pathgen.captioning.backends import make_backend
    from pathgen.captioning.backends.transformers import TransformersBackend
    from pathgen.captioning.stage import caption_slide
    from pathgen.config.captioning import CaptioningConfig

    vlm, data = toy
    run, full = straight
    tcfg = _tcfg(vlm, max_steps=6)
    out = export_merged(full["checkpoint"], tmp_path / "model", tcfg, card={"agent": "describe"})
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["LlavaForConditionalGeneration"]  # what vLLM dispatches on
    assert not (out / "adapter_config.json").exists() and (out / "tokenizer.json").is_file()
    assert list(out.glob("chat_template*")) or "chat_template" in (out / "tokenizer_config.json").read_text()
    with safe_open(str(next(out.glob("*.safetensors"))), "pt") as fh:
        assert not [k for k in fh.keys() if "lora_" in k or "base_layer" in k]
    # merged weights = base + adapter: same logits as the adapter model, not the base model's
    proc = AutoProcessor.from_pretrained(out)
    merged = AutoModelForImageTextToText.from_pretrained(out).eval()
    base = AutoModelForImageTextToText.from_pretrained(vlm).eval()
    peft_model = wrap_lora(AutoModelForImageTextToText.from_pretrained(vlm), tcfg).eval()
    load_adapter_weights(peft_model, Path(full["checkpoint"]))
    rec = json.loads(Layout.agents_data_files(data)["describe_val"].read_text())[0]
    folder = Path(json.loads(Layout.agents_data_files(data)["card"].read_text())["image_folder"])
    ex = SftExample(rec["id"], folder / rec["image"], "Describe.", rec["conversations"][1]["value"])
    batch = collate([encode(proc, ex, 512)], proc.tokenizer.pad_token_id)
    batch.pop("labels")
    with torch.no_grad():
        lm, lp, lb = (m(**batch).logits for m in (merged, peft_model, base))
    assert torch.allclose(lm, lp, atol=1e-4) and not torch.allclose(lm, lb, atol=1e-3)
    # the captioning config names the merged folder; the transformers backend captions with it,
    # as the model of every agent and as the describe agent's own model (captioning.agents)
    csv_path, patches = write_selection(tmp_path, "slide_q", kinds=("tumour", "stroma"))
    gen = dict(device="cpu", batch_size=2, max_new_tokens=5, summary_max_new_tokens=5)
    whole = CaptioningConfig(backend="transformers", concurrency=2, max_failed_fraction=0.0,
                             transformers=dict(model=str(out), **gen))
    per_agent = CaptioningConfig(backend="transformers", concurrency=2, max_failed_fraction=0.0,
                                 transformers=dict(model=str(vlm), **gen),
                                 agents={"describe": {"model": str(out)}})
    for name, ccfg, backend in (("whole", whole, TransformersBackend(whole.transformers)),
                                ("per_agent", per_agent, make_backend(per_agent))):
        captions = tmp_path / name / "slide_q.jsonl"
        summary = caption_slide(csv_path, patches, captions, ccfg, target_mpp=0.5, backend=backend)
        recs = [json.loads(x) for x in captions.read_text().splitlines()]
        assert summary["n_failed"] == 0 and len(recs) == 2, name
        assert all(r["status"] == "ok" and isinstance(r["describe"], str) for r in recs)
        agents = recs[0]["provenance"]["agents"]
        assert agents["describe"]["model"] == str(out)
        assert agents["revise"]["model"] == (str(out) if name == "whole" else str(vlm))


def test_cli_trains_the_revise_agent_and_exports(toy, tmp_path, capsys):
    from pathgen.cli import main

    vlm, data = toy
    sets = ["demo.enabled=true", f"agents.train.base_model={vlm}", "agents.train.device=cpu",
            "agents.train.batch_size=2", "agents.train.max_length=512", "agents.train.lora_r=4"]
    rc = main(["agents", "train", "--data", str(data), "--agent", "revise", "--out",
               str(tmp_path / "revise"), "--max-steps", "2", *[a for s in sets for a in ("--set", s)]])
    assert rc == 0, capsys.readouterr().err
    model = Layout.agents_run_files(tmp_path / "revise")["model"]
    card = json.loads(Layout.agents_model_files(model)["card"].read_text())
    assert card["agent"] == "revise" and card["steps"] == 2 and card["base_model"] == str(vlm)
    assert "-> " + str(model) in capsys.readouterr().out
    ckpt = agents_checkpoint(tmp_path / "revise", 2)
    rc = main(["agents", "export", str(ckpt), "--out", str(tmp_path / "again"),
               *[a for s in sets for a in ("--set", s)]])
    assert rc == 0 and Layout.agents_model_files(tmp_path / "again")["config"].is_file()
    rc = main(["agents", "train", "--data", str(tmp_path), "--agent", "revise", "--out",
               str(tmp_path / "x"), *[a for s in sets for a in ("--set", s)]])
    assert rc == 1 and "build-data" in capsys.readouterr().err  # not a build-data folder


def test_workflow_script_trains_from_params_only(toy, tmp_path):
    """Rule agents_train's script runs on params (agents.workflow.train_params + the run
    folder), wildcards, output and log: the stand-in has no workflow config."""
    import runpy
    import shutil
    from types import SimpleNamespace

    from pathgen.agents.workflow import train_params
    from pathgen.config import validate_config

    vlm, data = toy
    train = _tcfg(vlm, max_steps=2, lora_r=4).model_dump(mode="json")
    cfg = validate_config({"results_dir": str(tmp_path / "results"), "demo": {"enabled": True},
                           "agents": {"enabled": True, "train": train}})
    L = Layout(cfg)
    shutil.copytree(data, L.agents_data_dir)
    params = train_params(cfg)
    assert AgentsTrainConfig.model_validate(params["settings"]) == cfg.agents.train  # round trip
    run = L.agents_run_dir("describe")
    model = L.agents_run_files(run)["model"]
    sm = SimpleNamespace(log=[str(tmp_path / "log.txt")], wildcards=SimpleNamespace(agent="describe"),
                         input=SimpleNamespace(**{k: str(v) for k, v in L.agents_sft_files(L.agents_data_dir,
                                                                                           "describe").items()}),
                         output=SimpleNamespace(**{k: str(v) for k, v in L.agents_model_files(model).items()}),
                         params=SimpleNamespace(**params, run_dir=str(run)))
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "workflow_scripts" / "agents_train.py"),
                   init_globals={"snakemake": sm})
    card = json.loads(L.agents_model_files(model)["card"].read_text())
    assert card["agent"] == "describe" and card["steps"] == 2 and card["base_model"] == str(vlm)
    assert len(_history(run)) == 2


def test_qwen2vl_class_trains_exports_and_captions(toy, tmp_path):
    """The same path for a Qwen2-VL model (patch-row pixel_values, image_grid_thw, per-token
    mm_token_type_ids, M-RoPE): loss falls, the merged folder captions through the backend."""
    from pathgen_testkit.tiny_vlm import build_tiny_qwen2vl

    from pathgen.agents.stage import train_stage
    from pathgen.captioning.backends.transformers import TransformersBackend
    from pathgen.captioning.stage import caption_slide
    from pathgen.config.captioning import CaptioningConfig

    _, data = toy
    qwen = build_tiny_qwen2vl(tmp_path / "qwen", toy_words())
    s = train_stage(data, "describe", tmp_path / "run", _tcfg(qwen, max_steps=12, eval_every=12,
                                                              save_every=12, lora_dropout=0.0))
    losses = [float(r["train_loss"]) for r in _history(tmp_path / "run")]
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses
    cfg = json.loads((Path(s["model"]) / "config.json").read_text())
    assert cfg["architectures"] == ["Qwen2VLForConditionalGeneration"]
    ccfg = CaptioningConfig(backend="transformers", concurrency=2, max_failed_fraction=0.0,
                            transformers=dict(model=s["model"], device="cpu", batch_size=2,
                                              max_new_tokens=4, summary_max_new_tokens=4))
    csv_path, patches = write_selection(tmp_path, "slide_w", kinds=("tumour", "stroma"))
    out = tmp_path / "cap" / "slide_w.jsonl"
    summary = caption_slide(csv_path, patches, out, ccfg, target_mpp=0.5,
                            backend=TransformersBackend(ccfg.transformers))
    assert summary["n_failed"] == 0
    assert all(json.loads(x)["status"] == "ok" for x in out.read_text().splitlines())
