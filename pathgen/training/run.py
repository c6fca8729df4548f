"""Run the configured training stages with open_clip's trainer and export the final model.

Each stage is one call of ``open_clip_train.main.main(argv)`` (in-process for 1 GPU/CPU) or
``torchrun --nproc_per_node N`` (several GPUs). A finished stage (its last ``epoch_<N>.pt``
exists) is skipped on rerun; an unfinished one resumes with ``--resume latest``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..atomic import atomic_path, write_json
from ..config import PathgenConfig
from .argv import build_argv, launcher, resolve_device, stage_paths
from .curves import parse_out_log, plot_loss
from .data import resolve_stage_data
from .layout import training_outputs
from .models import check_arch, register_model_configs, resolve_pretrained

log = logging.getLogger(__name__)


@dataclass
class StageRun:
    name: str
    argv: list[str]
    command: list[str]
    checkpoint: str
    pretrained: str | None
    num_samples: int | None
    skipped: bool = False


@dataclass
class TrainResult:
    final: Path | None
    stages: list[StageRun] = field(default_factory=list)
    loss_first_epoch: float | None = None
    loss_last_epoch: float | None = None




def _run_in_process(argv: list[str]) -> None:
    from open_clip_train.main import main as open_clip_main

    # open_clip's setup_logging adds a console + out.log handler to the root logger and sets
    # every logger to INFO on each call. Park our console handlers (it prints its own), keep
    # file handlers (Snakemake's log), and restore everything after, so a later stage's lines
    # do not land in this stage's out.log.
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    levels = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
              if isinstance(lg, logging.Logger)}
    root.handlers[:] = [h for h in saved if isinstance(h, logging.FileHandler)]
    try:
        rc = open_clip_main(argv)
    finally:
        for h in root.handlers:
            if h not in saved:
                h.close()
        root.handlers[:] = saved
        root.setLevel(level)
        for name, lg in logging.root.manager.loggerDict.items():
            if isinstance(lg, logging.Logger):
                lg.setLevel(levels.get(name, logging.NOTSET))
    if rc not in (None, 0):
        raise RuntimeError(f"open_clip_train.main returned {rc} (see the messages above)")


def _run_torchrun(cmd: list[str], extra_configs: list[str]) -> None:
    env = dict(os.environ, PATHGEN_MODEL_CONFIGS=os.pathsep.join(extra_configs))
    log.info("launching: %s", " ".join(cmd))
    proc = subprocess.run(cmd, env=env)
    if proc.returncode:
        raise RuntimeError(f"torchrun exited with {proc.returncode}; see the stage's out.log")


def train(cfg: PathgenConfig, dry_run: bool = False, threads: int | None = None) -> TrainResult:
    """Run (or, with ``dry_run``, only plan) every stage; ``threads`` caps torch CPU threads."""
    tc = cfg.training
    training_dir = cfg.results_dir / "training"
    extra = [str(tc.model_config_file)] if tc.model_config_file else []
    register_model_configs(extra)
    check_arch(tc.arch)
    device = resolve_device(tc, torch.cuda.is_available())
    prefix = launcher(tc, device)
    if threads and device == "cpu":
        torch.set_num_threads(threads)
    default_csv = cfg.results_dir / "dataset" / "open_clip.csv"
    result = TrainResult(final=None)
    previous, chain = None, ""
    for i, stage in enumerate(tc.stages):
        paths = stage_paths(training_dir, tc, stage)
        if i == 0:
            pretrained = tc.pretrained if dry_run else resolve_pretrained(tc.pretrained, tc.arch)
        else:
            pretrained = str(previous)
        data = resolve_stage_data(stage, default_csv, paths.stage_dir, write=not dry_run)
        argv = build_argv(tc, stage, data, paths, pretrained, device)
        chain = stage_fingerprint(argv, stage.data or [str(default_csv)], chain)
        done = paths.final_checkpoint.exists() and _recorded(paths) == chain
        run = StageRun(stage.name, argv, prefix + argv, str(paths.final_checkpoint), pretrained,
                       data.num_samples, skipped=done)
        result.stages.append(run)
        previous = paths.final_checkpoint
        if dry_run:
            continue
        if done:
            log.info("stage %s already finished (%s); skipping", stage.name, paths.final_checkpoint)
            continue
        if _recorded(paths) not in (None, chain) and paths.logs.exists():
            # Data, settings or an earlier stage changed: old checkpoints must not be resumed.
            log.warning("stage %s: inputs changed since its checkpoints were written; "
                        "restarting it from scratch", stage.name)
            shutil.rmtree(paths.logs)
        log.info("stage %s: %s pairs, start weights %s", stage.name, data.num_samples,
                 pretrained or "random init")
        write_json(paths.stage_dir / "stage.json", {"fingerprint": chain, "argv": argv})
        if prefix:
            _run_torchrun(prefix + argv, extra)
        else:
            _run_in_process(argv)
        if not paths.final_checkpoint.exists():
            raise RuntimeError(f"stage {stage.name} ended without {paths.final_checkpoint}; see "
                               f"{paths.out_log}")
    if dry_run:
        return result
    outs = training_outputs(training_dir, tc.name)
    export_final(previous, outs["final"])
    result.final = outs["final"]
    points = []
    for stage in tc.stages:
        out_log = stage_paths(training_dir, tc, stage).out_log
        if out_log.exists():
            points += parse_out_log(out_log, stage.name)
    if points:
        plot_loss(points, outs["loss_png"], title=f"{tc.name} ({tc.arch})")
        with atomic_path(outs["loss_csv"]) as tmp:
            tmp.write_text("stage,epoch,progress,loss,lr\n" + "".join(
                f"{p.stage},{p.epoch},{p.progress:.4f},{p.loss:.6f},{p.lr if p.lr is not None else ''}\n"
                for p in points))
        first_epoch = [p.loss for p in points if p.stage == points[0].stage and p.epoch == points[0].epoch]
        last_epoch = [p.loss for p in points if p.stage == points[-1].stage and p.epoch == points[-1].epoch]
        result.loss_first_epoch = sum(first_epoch) / len(first_epoch)
        result.loss_last_epoch = sum(last_epoch) / len(last_epoch)
    write_json(outs["meta"], {
        "checkpoint": str(outs["final"]), "source": str(previous), "arch": tc.arch,
        "force_quick_gelu": tc.force_quick_gelu, "image_size": tc.image_size,
        "initial_weights": tc.pretrained, "name": tc.name,
        "encoder": {tc.register_as: {"kind": "open_clip", "arch": tc.arch,
                                     "pretrained": str(outs["final"]),
                                     "force_quick_gelu": tc.force_quick_gelu,
                                     "image_size": tc.image_size}},
        "loss_first_epoch": result.loss_first_epoch, "loss_last_epoch": result.loss_last_epoch,
        "stages": [asdict(s) for s in result.stages],
    })
    return result


def stage_fingerprint(argv: list[str], sources: list[str], previous: str) -> str:
    """Identity of a stage's work: settings (minus device/workers), source contents (CSV or
    count.json bytes) and the previous stage's identity. A change restarts the stage."""
    h = hashlib.sha256(previous.encode())
    skip = {"--device", "--workers"}
    h.update(json.dumps([a for i, a in enumerate(argv)
                         if a not in skip and (i == 0 or argv[i - 1] not in skip)]).encode())
    for src in sources:
        path = Path(src)
        if ".tar" in src:
            path = path.parent / "count.json"
        if path.is_file():
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
        else:
            h.update(src.encode())
    return h.hexdigest()[:16]


def _recorded(paths) -> str | None:
    marker = paths.stage_dir / "stage.json"
    try:
        return json.loads(marker.read_text())["fingerprint"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def export_final(checkpoint: Path, target: Path) -> None:
    """Write a bare state_dict (no optimizer, no 'module.' prefix): loads with plain
    ``open_clip.create_model_and_transforms(arch, pretrained=target)``."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    with atomic_path(target, suffix=".pt") as tmp:
        torch.save(sd, tmp)
    log.info("final checkpoint %s (from %s)", target, checkpoint)


def describe(result: TrainResult) -> str:
    lines = []
    for s in result.stages:
        state = "done, skipped" if s.skipped else "to run"
        lines.append(f"# stage {s.name} ({state}) -> {s.checkpoint}")
        lines.append(" ".join(_quote(a) for a in (s.command if s.command != s.argv else
                                                  ["python", "-m", "open_clip_train.main"] + s.argv)))
    return "\n".join(lines)


def _quote(arg: str) -> str:
    if arg == "\t":
        return "$'\\t'"  # bash ANSI-C quoting: copy-pasteable TAB
    return shlex.quote(arg)
