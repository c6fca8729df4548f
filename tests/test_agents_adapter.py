"""`pathgen agents export --format adapter`: the LoRA adapter alone, as peft writes it, plus the
pathgen card vLLM's multi-LoRA serving needs (read_adapter_card), on the tiny LLaVA of
pathgen_testkit/tiny_vlm.py: it loads back with PeftModel.from_pretrained and gives the merged export's
logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pathgen.config.agents import AgentsDataConfig, AgentsTrainConfig
from pathgen.agents.files import agents_data_files, agents_model_files
from pathgen_testkit.tiny_vlm import build_tiny_vlm
from pathgen_testkit.toy_captions import toy_words, write_toy_captions

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(tiny VLM, build-data folder, train config, a 4-step describe checkpoint in a run folder
    named after the agent, as `pathgen agents train --out <results>/agents/describe` makes)."""
    from pathgen.agents.build import build_data
    from pathgen.agents.teacher import pairs_from_files
    from pathgen.agents.train import train_agent
    from pathgen.captioning.prompts import load_templates

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("adapter")
    vlm = build_tiny_vlm(root / "vlm", toy_words())
    files, patches = write_toy_captions(root / "teacher")
    pairs, _ = pairs_from_files(files, patches, min_words=3)
    build_data(pairs, root / "data", AgentsDataConfig(val_fraction=0.3), load_templates(), patches)
    tcfg = AgentsTrainConfig(base_model=str(vlm), device="cpu", batch_size=2, learning_rate=1e-2,
                             warmup_steps=1, max_length=512, lora_r=4, lora_alpha=8,
                             lora_dropout=0.0, max_steps=4, eval_every=4, save_every=4)
    data = agents_data_files(root / "data")
    run = root / "agents" / "describe"
    s = train_agent(data["describe_train"], data["describe_train"], run, tcfg,
                    json.loads(data["card"].read_text())["image_folder"])
    assert s["done"]
    return vlm, root / "data", tcfg, Path(s["checkpoint"])


def _one_batch(vlm: Path, data: Path) -> dict:
    from transformers import AutoProcessor

    from pathgen.agents.sft import SftExample, collate, encode

    proc = AutoProcessor.from_pretrained(vlm)
    files = agents_data_files(data)
    rec = json.loads(files["describe_train"].read_text())[0]
    folder = Path(json.loads(files["card"].read_text())["image_folder"])
    ex = SftExample(rec["id"], folder / rec["image"], "Describe.", rec["conversations"][1]["value"])
    batch = collate([encode(proc, ex, 512)], proc.tokenizer.pad_token_id)
    batch.pop("labels")
    return batch


def test_adapter_loads_with_peft_and_equals_the_merged_export(trained, tmp_path):
    from peft import PeftModel
    from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME
    from safetensors import safe_open
    from transformers import AutoModelForImageTextToText

    from pathgen.agents.export import export_adapter, export_merged, read_adapter_card

    vlm, data, tcfg, ckpt = trained
    adapter = export_adapter(ckpt, tmp_path / "adapter", tcfg, "describe")
    merged = export_merged(ckpt, tmp_path / "merged", tcfg)
    # peft's own files (no full model beside them) + the card
    assert (adapter / CONFIG_NAME).is_file() and (adapter / SAFETENSORS_WEIGHTS_NAME).is_file()
    assert not (adapter / "config.json").exists() and not list(adapter.glob("model*.safetensors"))
    lora = json.loads((adapter / CONFIG_NAME).read_text())
    assert lora["peft_type"] == "LORA" and lora["r"] == 4 and lora["base_model_name_or_path"] == str(vlm)
    with safe_open(str(adapter / SAFETENSORS_WEIGHTS_NAME), "pt") as fh:
        keys = list(fh.keys())
    assert keys and all("lora_" in k and "language_model" in k for k in keys)  # no vision tower
    card = read_adapter_card(adapter)
    assert card == {"base_model": str(vlm), "name": "pathgen-describe", "rank": 4,
                    "max_lora_rank": 8, "agent": "describe",
                    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "path": str(adapter)}
    # base + adapter (peft) = merged export = the training checkpoint's model
    batch = _one_batch(vlm, data)
    base = AutoModelForImageTextToText.from_pretrained(vlm).eval()
    with torch.no_grad():
        lb = base(**batch).logits
        peft_model = PeftModel.from_pretrained(base, adapter).eval()
        la = peft_model(**batch).logits
        lm = AutoModelForImageTextToText.from_pretrained(merged).eval()(**batch).logits
    assert torch.allclose(la, lm, atol=1e-4) and not torch.allclose(la, lb, atol=1e-3)


def test_cli_exports_the_adapter_and_says_how_to_serve_it(trained, tmp_path, capsys):
    from pathgen.agents.export import read_adapter_card
    from pathgen.cli import main

    vlm, _, tcfg, ckpt = trained
    sets = ["demo.enabled=true", f"agents.train.base_model={vlm}", "agents.train.device=cpu",
            f"agents.train.lora_r={tcfg.lora_r}", f"agents.train.lora_alpha={tcfg.lora_alpha}"]
    out = tmp_path / "describe-adapter"
    rc = main(["agents", "export", str(ckpt), "--out", str(out), "--format", "adapter",
               *[a for s in sets for a in ("--set", s)]])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert (f"vllm serve {vlm} --enable-lora --lora-modules pathgen-describe={out} "
            "--max-lora-rank 8") in printed
    assert read_adapter_card(out)["agent"] == "describe"  # from the run folder's name
    rc = main(["agents", "export", str(ckpt), "--out", str(tmp_path / "r"), "--format", "adapter",
               "--agent", "revise", "--name", "my-reviser", *[a for s in sets for a in ("--set", s)]])
    assert rc == 0 and read_adapter_card(tmp_path / "r")["name"] == "my-reviser"
    # a checkpoint of other LoRA settings is refused at export, not by the server
    rc = main(["agents", "export", str(ckpt), "--out", str(tmp_path / "x"), "--format", "adapter",
               *[a for s in sets for a in ("--set", s)], "--set", "agents.train.lora_r=8"])
    assert rc == 2 and not (tmp_path / "x").exists()
    assert "lora_r=8" in capsys.readouterr().err


def test_read_adapter_card_refuses_other_folders(trained, tmp_path):
    from pathgen.agents.export import ExportError, checkpoint_agent, read_adapter_card, vllm_max_lora_rank

    with pytest.raises(ExportError, match="not an adapter folder"):
        read_adapter_card(tmp_path)
    merged = tmp_path / "m"
    merged.mkdir()
    agents_model_files(merged)["card"].write_text(json.dumps({"base_model": "b"}))
    with pytest.raises(ExportError, match="merged model, not an adapter"):
        read_adapter_card(merged)
    assert [vllm_max_lora_rank(r) for r in (1, 8, 9, 64, 300, 512)] == [8, 8, 16, 64, 320, 512]
    with pytest.raises(ExportError, match="--format merged"):
        vllm_max_lora_rank(1024)
    with pytest.raises(ExportError, match="--agent"):
        checkpoint_agent(tmp_path / "run" / "checkpoints" / "step_0000004")
