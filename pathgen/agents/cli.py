"""`pathgen agents build-data | train | export`: the trained-agents stages on plain paths."""

from __future__ import annotations

import argparse
import functools
import json
import sys


def register(sub) -> None:
    from ..cli import add_config_args, add_config_flag

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
    add_config_flag(b, "--teacher", key="agents.data.teacher", choices=["captions", "backend"])
    add_config_flag(b, "--corrupter", key="agents.data.corrupter", choices=["rules", "llm"])
    add_config_args(b)
    b.set_defaults(func=_clean_errors(_build))

    t = acts.add_parser("train", help="LoRA fine-tuning of one agent (resumes from its latest "
                                      "checkpoint), then merge + export to <out>/model")
    t.add_argument("--data", required=True, help="a build-data output folder")
    t.add_argument("--agent", choices=["describe", "revise"], required=True)
    t.add_argument("--out", required=True, help="run folder (checkpoints/, loss.csv, model/)")
    add_config_flag(t, "--base-model", key="agents.train.base_model")
    add_config_flag(t, "--max-steps", key="agents.train.max_steps", type=int)
    t.add_argument("--restart", action="store_true", help="discard checkpoints made with other "
                                                          "settings or data instead of failing")
    t.add_argument("--no-export", action="store_true", help="train only")
    add_config_args(t)
    t.set_defaults(func=_clean_errors(_train))

    e = acts.add_parser("export", help="merge a checkpoint's adapter into the base model, or "
                                       "write the adapter alone (vLLM multi-LoRA serving)")
    e.add_argument("checkpoint", help="a checkpoints/step_N folder of a training run")
    e.add_argument("--out", required=True, help="model (or adapter) folder to write")
    e.add_argument("--format", choices=["merged", "adapter"], default="merged",
                   help="merged (default): a plain model with the adapter merged in; adapter: "
                        "peft's adapter_config.json + adapter_model.safetensors and a card, for "
                        "`vllm serve BASE --enable-lora --lora-modules NAME=OUT`")
    e.add_argument("--agent", choices=["describe", "revise"],
                   help="the agent the checkpoint trains (default: the run folder's name)")
    e.add_argument("--name", help="adapter: the LoRA module name vLLM serves it as "
                                  "(default: pathgen-<agent>)")
    add_config_flag(e, "--base-model", key="agents.train.base_model")
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

    return config_from_args(args).agents.train  # --base-model/--max-steps are overrides


def _build(args) -> int:
    from ..cli import config_from_args
    from .stage import build_stage

    cfg = config_from_args(args)  # --teacher/--corrupter are agents.data.* overrides
    card = build_stage(cfg.agents.data, cfg.captioning, args.inputs, args.out, args.patches_root,
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
    from .export import checkpoint_agent, export_adapter, export_merged, read_adapter_card

    tcfg = _train_cfg(args)
    if args.format == "merged":
        out = export_merged(args.checkpoint, args.out, tcfg,
                            card={"agent": args.agent} if args.agent else None)
        print(f"merged model -> {out}")
        return 0
    agent = args.agent or checkpoint_agent(args.checkpoint)
    out = export_adapter(args.checkpoint, args.out, tcfg, agent, name=args.name)
    card = read_adapter_card(out)
    print(f"adapter {card['name']} (rank {card['rank']}) -> {out}\n"
          f"serve: vllm serve {card['base_model']} --enable-lora --lora-modules "
          f"{card['name']}={out} --max-lora-rank {card['max_lora_rank']}")
    return 0
