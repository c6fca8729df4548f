"""Training wrapper: open_clip argv, stage chaining, resume, one tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pathgen.config import ConfigError
from pathgen.config.training import TrainStage
from pathgen.training.argv import build_argv, launcher, stage_paths
from pathgen.training.curves import parse_out_log
from pathgen.training.data import resolve_stage_data
from pathgen_testkit.training import cfg_for, make_pairs, train


def test_separator_from_dataset_card_is_passed_explicitly(tmp_path):
    csv = make_pairs(tmp_path / "dataset", sep=";", card=True, absolute=True)
    data = resolve_stage_data(TrainStage(name="s1", data=[str(csv)]), csv, tmp_path / "out")
    assert data.csv_separator == ";" and data.num_samples == 8
    assert data.train_data == str(csv)  # usable as is: no rewritten copy
    cfg = cfg_for(tmp_path)
    argv = build_argv(cfg.training, cfg.training.stages[0], data,
                      stage_paths(tmp_path, cfg.training, cfg.training.stages[0]), None, "cpu")
    assert argv[argv.index("--csv-separator") + 1] == ";"
    assert argv[argv.index("--train-data") + 1] == str(csv)
    assert argv[argv.index("--resume") + 1] == "latest"
    assert "--pretrained" not in argv


def test_relative_paths_rewritten_against_csv_folder(tmp_path):
    csv = make_pairs(tmp_path / "dataset", sep=";", card=True)
    data = resolve_stage_data(TrainStage(name="s1", data=[str(csv)]), csv, tmp_path / "out")
    merged = Path(data.train_data)
    assert merged == tmp_path / "out" / "train.csv" and data.csv_separator == "\t"
    first = merged.read_text().splitlines()[1].split("\t")[0]
    assert Path(first).is_absolute() and Path(first).exists()


def test_separator_detected_and_bad_columns_error(tmp_path):
    csv = make_pairs(tmp_path / "d", sep="\t")
    data = resolve_stage_data(TrainStage(name="s", data=[str(csv)]), csv, tmp_path / "o")
    assert data.csv_separator == "\t"
    with pytest.raises(ConfigError, match="caption"):
        resolve_stage_data(TrainStage(name="s", data=[str(csv)], csv_caption_key="caption"),
                           csv, tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_stage_data(TrainStage(name="s"), tmp_path / "missing.csv", tmp_path / "o")


def test_stages_chain_pretrained_and_layout(tmp_path):
    a = make_pairs(tmp_path / "seed", n=6)
    b = make_pairs(tmp_path / "gen", n=10, sep="\t")
    cfg = cfg_for(tmp_path, pretrained=None, stages=[
        {"name": "seed", "data": [str(a)]},
        {"name": "full", "data": [str(b), str(a)], "epochs": 3}])
    result = train(cfg, dry_run=True)
    s1, s2 = result.stages
    root = tmp_path / "results" / "training" / "pathgen-clip"
    assert s1.checkpoint == str(root / "seed/logs/pathgen-clip/checkpoints/epoch_1.pt")
    assert s2.pretrained == s1.checkpoint
    assert s2.argv[s2.argv.index("--epochs") + 1] == "3"
    assert s2.num_samples == 16  # both CSVs merged
    assert s2.argv[s2.argv.index("--logs") + 1] == str(root / "full" / "logs")
    assert not (root / "full" / "train.csv").exists()  # dry run writes nothing


def test_torchrun_for_several_gpus(tmp_path):
    cfg = cfg_for(tmp_path, gpus=4)
    cmd = launcher(cfg.training, "cuda")
    assert "--nproc_per_node=4" in cmd and cmd[-2:] == ["-m", "pathgen.training.entry"]
    assert launcher(cfg.training, "cpu") == []


def test_webdataset_count_json(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "count.json").write_text(json.dumps({"num_samples": 123}))
    spec = str(shards / "shard-{000000..000001}.tar")
    data = resolve_stage_data(TrainStage(name="w", data=[spec]), Path("x.csv"), tmp_path)
    assert data.dataset_type == "webdataset" and data.num_samples == 123
    with pytest.raises(ConfigError, match="mixes"):
        resolve_stage_data(TrainStage(name="w", data=[spec, "a.csv"]), Path("x.csv"), tmp_path)


def test_parse_out_log(tmp_path):
    log = tmp_path / "out.log"
    log.write_text(
        "2026-01-01,00:00:00 | INFO | Start epoch 0\n"
        "2026-01-01,00:00:01 | INFO | Train Epoch: 0 [ 4/8 (50%)] Data (t): 0.1 Batch (t): 0.2, "
        "20/s, 20/s/gpu LR: 0.001000 Logit Scale: 14.286 Contrastive_loss: 1.3863 (1.3863) "
        "Loss: 1.3863 (1.3863)\n"
        "2026-01-01,00:00:02 | INFO | Train Epoch: 1 [ 8/8 (100%)] Data (t): 0.1 Batch (t): 0.2, "
        "20/s, 20/s/gpu LR: 0.000500 Logit Scale: 14.3 Contrastive_loss: 0.5 (0.9) Loss: 0.5 (0.9)\n")
    pts = parse_out_log(log, "s")
    assert [p.loss for p in pts] == [1.3863, 0.5]
    assert pts[0].progress == 0.5 and pts[1].progress == 2.0 and pts[1].lr == 0.0005


def test_one_epoch_tiny_run_loads_with_plain_open_clip(tmp_path):
    import open_clip
    import torch

    csv = make_pairs(tmp_path / "results" / "dataset", n=8, card=True)
    cfg = cfg_for(tmp_path)
    result = train(cfg, threads=1)
    final = tmp_path / "results" / "training" / "final.pt"
    assert result.final == final and final.exists()
    ckpt = stage_paths(tmp_path / "results" / "training", cfg.training, cfg.training.stages[0])
    assert ckpt.final_checkpoint.exists() and ckpt.out_log.exists()
    assert (tmp_path / "results/training/pathgen-clip/loss.png").stat().st_size > 0
    meta = json.loads((tmp_path / "results/training/final.json").read_text())
    assert meta["encoder"]["pathgen-demo-clip"]["pretrained"] == str(final)
    # Plain open_clip: only the architecture JSON must be known.
    open_clip.add_model_config(tmp_path / "pathgen-micro.json")
    model, _, _ = open_clip.create_model_and_transforms("pathgen-micro", pretrained=str(final))
    trained = torch.load(ckpt.final_checkpoint, weights_only=True)["state_dict"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained[k]), k
    # A rerun finds the finished stage and does not train again.
    mtime = ckpt.final_checkpoint.stat().st_mtime_ns
    again = train(cfg, threads=1)
    assert again.stages[0].skipped and ckpt.final_checkpoint.stat().st_mtime_ns == mtime
    # Changed data: the stage is no longer done (a real run would restart it from scratch).
    csv.write_text(csv.read_text().replace("red", "crimson"))
    assert not train(cfg, dry_run=True).stages[0].skipped


def test_cli_dry_run_prints_open_clip_command(tmp_path, capsys):
    from pathgen.cli import main

    csv = make_pairs(tmp_path / "d", sep="|", absolute=True)
    rc = main(["train", "--dry-run", "--data", str(csv), "--csv-separator", "|",
               "--results-dir", str(tmp_path / "r"), "--set", "training.pretrained=openai",
               "--set", "training.arch=ViT-B-16", "--set", "training.force_quick_gelu=true"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "open_clip_train.main --model ViT-B-16" in out
    assert "--csv-separator '|'" in out and "--pretrained openai" in out
    assert "--force-quick-gelu" in out
    assert not (tmp_path / "r").exists()
