"""`pathgen agents build-data | train | export`: the trained-agents stages on plain paths."""

from __future__ import annotations

import argparse
import functools
import json
import sys


def register(sub) -> None:
    from ..cli import add_config_args

    p = sub.add_parser("agents", help="Build SFT data for the describe/revise agents, LoRA-train "
                                      "and export them")
    acts = p.add_subparsers(dest="agents_command", metavar="ACTION", required=True)
    b = acts.add_parser("build-data", help="(patch, teacher description) pairs -> describe and "
                                           "revise SFT data (LLaVA conversations), split by slide")
    b.add_argument("inputs", nargs="+", help="caption JSONLs / descriptions files (teacher "
                                             "'captions'), or selection CSVs (teacher 'backend')")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--patches-root", default=None, help="folder the inputs' 'image' paths are "
                   "relative to (selection/patches; default: beside each input file)")
    b.add_argument("--teacher", choices=["captions", "backend"], help="override agents.data.teacher")
    b.add_argument("--corrupter", choices=["rules", "llm"], help="override agents.data.corrupter")
    add_config_args(b)
    b.set_defaults(func=_clean_errors(_build))

    t = acts.add_parser("train", help="LoRA fine-tuning of one agent (resumes from its latest "
                                      "checkpoint), then merge + export to <out>/model")
    t.add_argument("--data", required=True, help="a build-data output folder")
    t.add_argument("--agent", choices=["describe", "revise"], required=True)
    t.add_argument("--out", required=True, help="run folder (checkpoints/, loss.csv, model/)")
    t.add_argument("--base-model", help="override agents.train.base_model")
    t.add_argument("--max-steps", type=int, help="override agents.train.max_steps")
    t.add_argument("--restart", action="store_true", help="discard checkpoints made with other "
                                                          "settings or data instead of failing")
    t.add_argument("--no-export", action="store_true", help="train only")
    add_config_args(t)
    t.set_defaults(func=_clean_errors(_train))

    e = acts.add_parser("export", help="merge a checkpoint's adapter into the base model")
    e.add_argument("checkpoint", help="a checkpoints/step_N folder of a training run")
    e.add_argument("--out", required=True, help="model folder to write")
    e.add_argument("--base-model", help="override agents.train.base_model")
    add_config_args(e)
    e.set_defaults(func=_clean_errors(_export))


def _clean_errors(fn):
    """Bad inputs (files, formats, a run of other settings) are one line, not a traceback."""
    @functools.wraps(fn)
    def run(args) -> int:
        from ..config import ConfigError
        from .checkpoint import RunMismatch
        from .export import ExportError

        try:
            return fn(args)
        except ConfigError:
            raise
        except (ValueError, RunMismatch, ExportError) as err:
            print(f"pathgen agents {args.agents_command}: {err}", file=sys.stderr)
            return 2
    return run


def _train_cfg(args: argparse.Namespace):
    from ..cli import config_from_args

    tcfg = config_from_args(args).agents.train
    update = {k: v for k, v in (("base_model", args.base_model),
                                ("max_steps", getattr(args, "max_steps", None))) if v is not None}
    return tcfg.model_validate({**tcfg.model_dump(), **update})


def _build(args) -> int:
    from ..cli import config_from_args
    from .stage import build_stage

    cfg = config_from_args(args)
    d = cfg.agents.data
    update = {k: v for k, v in (("teacher", args.teacher), ("corrupter", args.corrupter)) if v}
    d = d.model_validate({**d.model_dump(), **update})
    card = build_stage(d, cfg.captioning, args.inputs, args.out, args.patches_root,
                       target_mpp=cfg.tiling.geometry()[1])
    print(f"{json.dumps(card['n'])} ({card['corrupter']} corrupter) -> {args.out}")
    return 0


def _train(args) -> int:
    from .stage import train_stage

    s = train_stage(args.data, args.agent, args.out, _train_cfg(args), restart=args.restart,
                    export=not args.no_export)
    print(f"{args.agent}: step {s['step']}, train loss {s['train_loss']}, val loss {s['val_loss']}"
          + (f" -> {s['model']}" if s.get("model") else ""))
    return 0


def _export(args) -> int:
    from .export import export_merged

    out = export_merged(args.checkpoint, args.out, _train_cfg(args))
    print(f"merged model -> {out}")
    return 0
