"""Real defaults for real runs, the demo as an overlay, one config semantics (issue 19.5/19.6).

The schema's defaults are the real-data ones (the PathGen-1.6M method where it defines one);
the demo's small settings live in pathgen/data/demo.yaml and apply only while the demo is the
run's slide source. The workflow records each run's effective config (with every value's
source) under its results folder, and the subcommands that read a run's state use it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pathgen.cli import RUN_STATE_COMMANDS, build_parser, config_from_args, resolved_from_args
from pathgen.config import Layer, load_config, resolve_config, validate_config
from pathgen.config.layers import (BUILTIN, CONFIG_YAML, DEMO_OVERLAY, demo_is_source, demo_overlay,
                                   merge_layers, with_demo_overlay)
from pathgen.paths import Layout
from pathgen.run_record import read_run_record, recorded_config, write_run_record

REPO = Path(__file__).resolve().parents[1]


def write_slides(folder: Path, n: int, size: int) -> None:
    """Small real Aperio SVS files at 0.5 µm/px: a pink disc (tissue) on white."""
    import numpy as np

    from pathgen.demo.aperio import write_aperio_svs

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        img = np.full((size, size, 3), 240, np.uint8)
        disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.3 * size) ** 2
        img[disc] = (200 - 10 * i, 110, 170)
        write_aperio_svs(folder / f"slide_{i:03d}.svs", img, mpp=0.5, app_mag=20)


def snakemake(root: Path, *args: str, timeout: int = 300) -> str:
    """The repo's Snakefile run in ``root`` (its own config.yaml and results)."""
    proc = subprocess.run(["timeout", "-k", "15", str(timeout), sys.executable, "-m", "snakemake",
                           "-s", str(REPO / "Snakefile"), "--directory", str(root), *args],
                          cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, f"snakemake {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr


def copy_text(src: Path, dst: Path) -> None:
    dst.write_text(src.read_text())


# The documented real defaults (README "Running on your own slides"): what a config holding
# only `demo: {enabled: false}` and `slides.dir` runs with.
REAL_DEFAULTS = {
    "tiling.preset": "pathgen",
    "features.encoder": "pathgen-clip",
    "selection.max_per_slide": 256,
    "selection.dedupe_cosine": 0.95,
    "captioning.backend": "openai",
    "training.arch": "ViT-B-16",
    "training.pretrained": "openai",
    "training.force_quick_gelu": True,
    "training.lr": 1e-5,
    "training.register_as": "pathgen-clip-trained",
    "training.baselines": [],
    "encoders": {},
    "evaluation.mil.tasks": {},
    "evaluation.zeroshot.benchmarks": {},
    "evaluation.zeroshot.models": [],
    "cluster.chunk_size": 64,
}


def _get(cfg, dotted: str):
    value = cfg.model_dump(mode="json")
    for part in dotted.split("."):
        value = value[part]
    return value


def _real(slides: str = "/data/slides") -> dict:
    return {"demo": {"enabled": False}, "slides": {"dir": slides}}


def test_a_real_config_gets_exactly_the_real_defaults(tmp_path, monkeypatch):
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(_real()))
    copy_text(REPO / CONFIG_YAML, tmp_path / CONFIG_YAML)  # the repo's: demo on
    monkeypatch.chdir(tmp_path)
    # as `snakemake --configfile my.yaml` / `pathgen ... --configfile my.yaml` read it
    resolved = resolve_config([Layer(CONFIG_YAML, yaml.safe_load(Path(CONFIG_YAML).read_text()),
                                     CONFIG_YAML),
                               Layer("--configfile my.yaml", _real(), "my.yaml")])
    cfg = resolved.config
    assert cfg.tiling.geometry() == (pytest.approx(168.0), 0.25, 672)  # 672 px at 0.25 µm/px
    for key, value in REAL_DEFAULTS.items():
        assert _get(cfg, key) == value, key
    # nothing from the demo: every value the user did not set is a built-in default
    assert DEMO_OVERLAY not in set(resolved.sources.values())
    assert {k for k, s in resolved.sources.items() if s != BUILTIN} == {
        "demo.enabled", "slides.dir", "results_dir"}  # results_dir: config.yaml says `results`
    assert resolved.sources["demo.enabled"] == "--configfile my.yaml"
    # the CLI's --configfile and validate_config of the same settings agree
    assert load_config(configfiles=["my.yaml"]) == cfg == validate_config(_real())
    assert config_from_args(build_parser().parse_args(["validate-config", "--configfile", "my.yaml"])) == cfg


def test_the_repo_config_is_the_demo_with_its_overlay(monkeypatch):
    monkeypatch.chdir(REPO)
    resolved = resolve_config([Layer(CONFIG_YAML, yaml.safe_load((REPO / CONFIG_YAML).read_text()),
                                     CONFIG_YAML)])
    cfg = resolved.config
    assert cfg.uses_demo and cfg == load_config(CONFIG_YAML)
    assert cfg.tiling.geometry() == (128.0, 0.5, 256)
    assert (cfg.features.encoder, cfg.selection.max_per_slide, cfg.captioning.backend) == \
        ("tiny-demo", 40, "morphometric")
    assert (cfg.training.arch, cfg.training.epochs, cfg.training.baselines) == \
        ("pathgen-tiny-vit", 6, ["slide_text"])
    assert set(cfg.evaluation.mil.tasks) == {"demo_tumor"} and set(cfg.evaluation.zeroshot.benchmarks) == {"demo"}
    assert resolved.sources["features.encoder"] == DEMO_OVERLAY
    assert resolved.sources["demo.enabled"] == CONFIG_YAML
    assert [la["source"] for la in resolved.layers] == [BUILTIN, DEMO_OVERLAY, CONFIG_YAML]
    # config.yaml holds only the overrides a user edits; the demo values are the overlay's
    assert "features" not in yaml.safe_load((REPO / CONFIG_YAML).read_text())


def test_overlay_only_while_the_demo_is_the_slide_source():
    assert demo_is_source({}) and demo_is_source({"demo": {"enabled": True}})
    assert not demo_is_source({"demo": {"enabled": False}, "slides": {"dir": "/d"}})
    # demo left on but real slides named: the slides are used, so no demo values either
    on_but_real = {"demo": {"enabled": True}, "slides": {"sample_sheet": "/d/sheet.csv"}}
    assert not demo_is_source(on_but_real)
    assert with_demo_overlay(on_but_real) == on_but_real
    assert validate_config({"slides": {"dir": "/d"}}).features.encoder == "pathgen-clip"
    # the user's value wins over the overlay's; maps merge key by key
    cfg = validate_config({"selection": {"max_per_slide": 12}, "encoders": {"mine": {"arch": "ViT-B-16"}}})
    assert cfg.selection.max_per_slide == 12 and cfg.features.encoder == "tiny-demo"
    assert {"mine", "pathgen-demo-clip"} <= set(cfg.encoders)
    assert set(demo_overlay()) <= set(type(cfg).model_fields)


def test_sources_follow_snakemakes_merge_and_set_replaces():
    layers = [Layer("config.yaml", {"tiling": {"patch_size_um": 64, "target_mpp": 0.5}}),
              Layer("--configfile a.yaml", {"tiling": {"target_mpp": 1.0}, "training": {"baselines": []}}),
              Layer("--set", {"tiling.patch_size_um": 96, "resources.caption": {"threads": 3}}, dotted=True)]
    data, owner = merge_layers(layers)
    assert data["tiling"] == {"patch_size_um": 96, "target_mpp": 1.0}
    r = resolve_config(layers)
    assert r.sources["tiling.patch_size_um"] == "--set" and r.sources["tiling.target_mpp"] == "--configfile a.yaml"
    assert r.sources["training.baselines"] == "--configfile a.yaml"  # a list replaces (the demo's)
    assert r.config.training.baselines == []
    assert r.sources["resources.caption.threads"] == "--set"
    assert r.sources["resources.caption.mem_mb"] == BUILTIN  # merged over the rule's built-ins
    assert r.source_of("tiling").startswith("mixed")


def test_a_size_key_replaces_the_pathgen_preset():
    real = _real()
    only_mpp = validate_config({**real, "tiling": {"target_mpp": 0.5}})
    assert only_mpp.tiling.preset is None and only_mpp.tiling.geometry() == (336.0, 0.5, 672)
    only_um = validate_config({**real, "tiling": {"patch_size_um": 256}})
    assert only_um.tiling.geometry() == (256.0, 0.25, 1024)
    named = validate_config({**real, "tiling": {"preset": "pathgen", "patch_size_um": 64}})
    assert named.tiling.geometry()[2] == 672  # a named preset still wins
    round_trip = validate_config(only_mpp.model_dump(mode="json"))
    assert round_trip == only_mpp and validate_config(validate_config(real).model_dump(mode="json")) == validate_config(real)


def test_state_subcommands_read_the_recorded_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / CONFIG_YAML).write_text("demo: {enabled: true}\n")
    (tmp_path / "real.yaml").write_text(yaml.safe_dump({**_real(str(tmp_path)),
                                                        "results_dir": str(tmp_path / "elsewhere")}))
    run = resolve_config([Layer(CONFIG_YAML, {"demo": {"enabled": True}}, CONFIG_YAML),
                          Layer("--configfile real.yaml", yaml.safe_load((tmp_path / "real.yaml").read_text()),
                                "real.yaml")])
    path = write_run_record(run, Layout(run.config).run_config, Layout.last_run_pointer(), ["snakemake"])
    assert path == tmp_path / "elsewhere" / "run_config.yaml" and Layout.find_run_config() == path
    rec = read_run_record(path)
    assert rec["sources"]["slides.dir"] == "--configfile real.yaml" and rec["config"]["demo"]["enabled"] is False
    assert recorded_config(path).config == run.config
    parser = build_parser()
    commands = {"status": ["status"], "doctor": ["doctor"], "report": ["report"],
                "export": ["export", "clam", "--out", "x"]}
    assert set(commands) <= set(RUN_STATE_COMMANDS)
    for argv in commands.values():
        assert config_from_args(parser.parse_args(argv)) == run.config, argv
        # --configfile overlays on ./config.yaml as snakemake does: the same run
        assert config_from_args(parser.parse_args([*argv, "--configfile", "real.yaml"])) == run.config
        assert config_from_args(parser.parse_args([*argv, "--config", CONFIG_YAML])).uses_demo
    over = resolved_from_args(parser.parse_args(["status", "--set", "on_slide_error=fail"]))
    assert over.config.on_slide_error == "fail" and over.sources["on_slide_error"] == "--set"
    assert over.sources["slides.dir"] == "--configfile real.yaml"
    # other subcommands keep ./config.yaml (+ --configfile): they read no run's state
    assert config_from_args(parser.parse_args(["validate-config"])).uses_demo


def test_recover_unlocks_with_the_runs_configfiles(tmp_path):
    from pathgen.runner.recover import run_config_args

    extra = tmp_path / "real.yaml"
    extra.write_text(yaml.safe_dump(_real(str(tmp_path))))
    run = resolve_config([Layer(f"--configfile {extra}", _real(str(tmp_path)), str(extra)),
                          Layer("--config", {"on_slide_error": "fail"})])
    write_run_record(run, tmp_path / "results" / "run_config.yaml", Layout.last_run_pointer(tmp_path))
    args = run_config_args(tmp_path)
    assert args[:2] == ["--configfile", str(extra)]
    assert yaml.safe_load(Path(args[2]).read_text()) == {"on_slide_error": "fail"}


# -- the workflow ----------------------------------------------------------------------------------
def test_snakemake_plans_a_real_config_of_only_slides(tmp_path):
    write_slides(tmp_path / "slides", 2, size=512)
    copy_text(REPO / CONFIG_YAML, tmp_path / CONFIG_YAML)
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(_real(str(tmp_path / "slides"))))
    text = snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", "my.yaml")
    rules = set(re.findall(r"^(\w+)\s+\d+$", text, re.M)) - {"total"}
    assert {"tile", "extract_features", "select_patches", "caption", "train_clip"} <= rules, text
    assert not {"make_demo_slide", "train_baseline", "baseline_data", "zeroshot", "mil"} & rules
    assert not (tmp_path / "results" / "run_config.yaml").exists()  # a dry run records nothing


def test_status_after_a_configfile_run_shows_the_runs_states(tmp_path, monkeypatch):
    """`snakemake --configfile real.yaml` (one stage), then `pathgen status` with no flags and
    with `--configfile real.yaml` both show that run's slides and states; config.yaml alone
    (the demo) would not."""
    write_slides(tmp_path / "slides", 2, size=768)
    copy_text(REPO / CONFIG_YAML, tmp_path / CONFIG_YAML)
    real = {**_real(str(tmp_path / "slides")), "results_dir": str(tmp_path / "real_results"),
            "tiling": {"target_mpp": 0.5}}  # 672 px at the slides' own 0.5 µm/px
    (tmp_path / "real.yaml").write_text(yaml.safe_dump(real))
    monkeypatch.chdir(tmp_path)
    lay = Layout(load_config(configfiles=["real.yaml"]))  # as the run will read it
    snakemake(tmp_path, "--cores", "1", str(lay.chunk_done("tile", "chunk_00000")), "--configfile", "real.yaml")
    rec = read_run_record(lay.run_config)
    assert rec["sources"]["tiling.target_mpp"] == "--configfile real.yaml"
    assert rec["sources"]["features.encoder"] == BUILTIN and rec["config"]["features"]["encoder"] == "pathgen-clip"

    def status(*args):
        proc = subprocess.run([sys.executable, "-m", "pathgen.cli", "status", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr

    for args in ((), ("--configfile", "real.yaml")):
        rc, out, err = status(*args)
        assert rc == 0, err
        rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.startswith("slide_")}
        assert set(rows) == {"slide_000", "slide_001"}, out
        assert all(cells[0] == "done" and cells[1] == "pending" for cells in rows.values()), out
        assert "tile: 2 done" in out and "demo_" not in out
    assert "recorded in" in status()[2]  # says which config it read
    rc, out, _ = status("--config", CONFIG_YAML)  # config.yaml alone: the demo, nothing run
    assert "demo_000" in out and "slide_000" not in out
