"""`pathgen caption`: caption one slide's selected patches (works on plain paths)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from pathgen.cli import add_config_args, add_config_flag, config_from_args
from pathgen.config import ConfigError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (patches in flight), got {value}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "caption", help="Describe -> revise -> summarize the selected patches of one slide",
        description="Caption the patches listed in a selection CSV. Resumes from "
                    "<out>.partial.jsonl after a crash. Backends: openai (any OpenAI-compatible "
                    "server), transformers (local HF model), morphometric (measurement-based "
                    "baseline, not a language model).")
    p.add_argument("selection", help="selection CSV (slide_id,x,y,level,...,image)")
    p.add_argument("--patches-root", "--patches-dir", dest="patches_root", required=True,
                   help="folder the CSV's 'image' column is relative to: the --patches-root "
                        "`pathgen select` wrote into (results: <selection>/patches)")
    p.add_argument("--out", required=True, help="output captions JSONL (<slide>.jsonl)")
    add_config_flag(p, "--backend", key="captioning.backend",
                    choices=["openai", "transformers", "morphometric"])
    add_config_flag(p, "--model", key=_model_key,
                    help="model id for the chosen backend (= --set captioning.<backend>.model=VALUE)")
    add_config_flag(p, "--base-url", key="captioning.openai.base_url",
                    help="openai backend: server URL, e.g. http://host:8000/v1")
    add_config_flag(p, "--concurrency", key="captioning.concurrency", type=positive_int,
                    help="patches in flight (>= 1)")
    p.add_argument("--mpp", type=float,
                   help="µm/px of the patches at size_px (default: the tiling target mpp)")
    add_config_args(p)
    p.set_defaults(func=_run)


def _model_key(cfg) -> str:
    """``--model``'s key: the model of captioning.backend as the other overrides leave it."""
    backend = cfg.captioning.backend
    if backend == "morphometric":
        raise ConfigError("--model does not apply to the morphometric backend (a "
                          "measurement-based baseline, not a language model)")
    return f"captioning.{backend}.model"


def _run(args: argparse.Namespace) -> int:
    from .chunk_stage import alignment_spec
    from .stage import CaptioningAborted, CaptioningIncomplete, caption_slide

    cfg = config_from_args(args)  # --backend/--model/--base-url/--concurrency included
    c = cfg.captioning
    mpp = args.mpp if args.mpp is not None else cfg.tiling.geometry()[1]
    from .serving import ServerPool, ServerStartError

    from .files import SERVER_LOGS_DIR

    pool = ServerPool(c, Path(args.out).parent / SERVER_LOGS_DIR) if c.serve == "managed" else None
    try:
        routed = pool.start() if pool else None  # serve: managed: this command's own server
        summary = caption_slide(args.selection, args.patches_root, args.out, c, mpp,
                                alignment_spec=alignment_spec(cfg), backend_cfg=routed)
    except ServerStartError as err:
        print(f"pathgen caption: {err}", file=sys.stderr)
        return 5
    except CaptioningIncomplete as err:
        print(f"pathgen caption: {err}", file=sys.stderr)
        return 3
    except CaptioningAborted as err:
        print(f"pathgen caption: stopped: {err}", file=sys.stderr)
        return 4
    finally:
        if pool is not None:
            pool.stop()
    print(json.dumps(summary, indent=2))
    return 0
