"""training.warm_start: changed data continues from the previous run's final weights."""

from __future__ import annotations

import json
import logging

import open_clip.factory
import pytest
import torch

from pathgen.paths import Layout
from pathgen.training.argv import stage_paths
from pathgen_testkit.training import cfg_for, make_pairs, train


@pytest.fixture
def loaded(monkeypatch):
    """Weights of every model open_clip builds from a `--pretrained` file, right after loading."""
    seen: list[tuple[str, dict]] = []
    original = open_clip.factory.load_checkpoint

    def spy(model, checkpoint_path, *args, **kwargs):
        out = original(model, checkpoint_path, *args, **kwargs)
        seen.append((str(checkpoint_path),
                     {k: v.detach().clone() for k, v in model.state_dict().items()}))
        return out

    monkeypatch.setattr(open_clip.factory, "load_checkpoint", spy)
    return seen


def final_weights(tmp_path) -> dict:
    return torch.load(tmp_path / "results/training/final.pt", weights_only=True)


def meta(tmp_path) -> dict:
    return json.loads((tmp_path / "results/training/final.json").read_text())


def test_warm_start_continues_from_previous_final(tmp_path, loaded, caplog):
    dataset = tmp_path / "results" / "dataset"
    make_pairs(dataset, n=8, card=True)
    cfg = cfg_for(tmp_path, warm_start=True)
    training_dir = tmp_path / "results" / "training"
    keep = Layout(cfg).warm_start_files()["checkpoint"]

    # Run 1: nothing to continue from -> trains as configured (random init here).
    with caplog.at_level(logging.INFO, logger="pathgen.training.run"):
        first = train(cfg, threads=1)
    assert "nothing to continue from" in caplog.text
    assert loaded == [] and first.warm_start_from is None and meta(tmp_path)["warm_start_from"] is None
    run1 = final_weights(tmp_path)
    assert keep.is_file()
    assert all(torch.equal(v, torch.load(keep, weights_only=True)[k]) for k, v in run1.items())

    # Snakemake deletes the rule's outputs before a rerun; the kept copy must survive that.
    (training_dir / "final.pt").unlink()
    make_pairs(dataset, n=12, card=True)  # data changed: 4 more pairs
    plan = train(cfg, dry_run=True)
    assert not plan.stages[0].skipped and plan.stages[0].warm_start_from == str(keep)

    second = train(cfg, threads=1)
    stage = second.stages[0]
    assert stage.pretrained == str(keep) and stage.argv[stage.argv.index("--pretrained") + 1] == str(keep)
    assert meta(tmp_path)["warm_start_from"] == str(keep) and meta(tmp_path)["warm_start"] is True
    # Run 2's initial weights are run 1's final weights.
    assert len(loaded) == 1 and loaded[0][0] == str(keep)
    start = loaded[0][1]
    assert start.keys() == run1.keys()
    assert all(torch.equal(start[k], run1[k]) for k in run1)
    run2 = final_weights(tmp_path)
    assert not all(torch.equal(run2[k], run1[k]) for k in run1)  # and it trained on
    assert all(torch.equal(v, torch.load(keep, weights_only=True)[k]) for k, v in run2.items())
    record = json.loads((stage_paths(training_dir, cfg.training, cfg.training.stages[0]).stage_dir
                         / "stage.json").read_text())
    assert record["warm_start_from"] == str(keep)

    # Same data again: the warm-started stage is finished and skipped.
    third = train(cfg, threads=1)
    assert third.stages[0].skipped and len(loaded) == 1
    assert meta(tmp_path)["warm_start_from"] == str(keep)

    # warm_start switched off: the warm-started stage is not what the config asks for -> scratch.
    cold = cfg_for(tmp_path, warm_start=False)
    fourth = train(cold, threads=1)
    assert not fourth.stages[0].skipped and "--pretrained" not in fourth.stages[0].argv
    assert len(loaded) == 1 and meta(tmp_path)["warm_start_from"] is None


def test_without_warm_start_changed_data_trains_from_scratch(tmp_path, loaded):
    dataset = tmp_path / "results" / "dataset"
    make_pairs(dataset, n=8, card=True)
    cfg = cfg_for(tmp_path)
    assert cfg.training.warm_start is False  # paper reproduction: from scratch
    train(cfg, threads=1)
    assert Layout(cfg).warm_start_files()["checkpoint"].is_file()
    make_pairs(dataset, n=12, card=True)
    again = train(cfg, threads=1)
    assert not again.stages[0].skipped and again.stages[0].pretrained is None
    assert "--pretrained" not in again.stages[0].argv
    assert loaded == [] and meta(tmp_path)["warm_start_from"] is None


def test_warm_start_ignores_a_checkpoint_of_another_architecture(tmp_path, caplog):
    make_pairs(tmp_path / "results" / "dataset", n=8, card=True)
    cfg = cfg_for(tmp_path, warm_start=True)
    files = Layout(cfg).warm_start_files()
    files["checkpoint"].parent.mkdir(parents=True)
    files["checkpoint"].write_bytes(b"not used")
    files["meta"].write_text(json.dumps({"arch": "ViT-B-16", "image_size": None,
                                         "force_quick_gelu": False, "fingerprint": "x"}))
    with caplog.at_level(logging.WARNING, logger="pathgen.training.run"):
        plan = train(cfg, dry_run=True)
    assert plan.stages[0].warm_start_from is None and "--pretrained" not in plan.stages[0].argv
    assert "ViT-B-16" in caplog.text
