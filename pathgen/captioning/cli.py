"""`pathgen caption`: caption one slide's selected patches (works on plain paths)."""

from __future__ import annotations

import argparse
import json
import sys

from pydantic import ValidationError

from pathgen.cli import add_config_args, config_from_args
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
    p.add_argument("--backend", choices=["openai", "transformers", "morphometric"])
    p.add_argument("--model", help="model id for the chosen backend")
    p.add_argument("--base-url", help="openai backend: server URL, e.g. http://host:8000/v1")
    p.add_argument("--concurrency", type=positive_int, help="patches in flight (>= 1)")
    p.add_argument("--mpp", type=float,
                   help="µm/px of the patches at size_px (default: the tiling target mpp)")
    add_config_args(p)
    p.set_defaults(func=_run)


def _set(section, field: str, value, where: str) -> None:
    """Validated assignment (validate_assignment) reported as a ConfigError naming the key."""
    try:
        setattr(section, field, value)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            key = ".".join([where, *(str(x) for x in e.get("loc", ()))])
            lines.append(f"  - '{key}': {e.get('msg')}")
        raise ConfigError("invalid command-line option:\n" + "\n".join(lines)) from None


def _run(args: argparse.Namespace) -> int:
    from ..chunk_stages.caption import alignment_spec
    from .stage import CaptioningAborted, CaptioningIncomplete, caption_slide

    cfg = config_from_args(args)
    c = cfg.captioning
    if args.backend:
        _set(c, "backend", args.backend, "captioning")
    if args.model:
        if c.backend == "morphometric":
            raise ConfigError("--model does not apply to the morphometric backend (a "
                              "measurement-based baseline, not a language model)")
        _set(getattr(c, c.backend), "model", args.model, f"captioning.{c.backend}")
    if args.base_url:
        _set(c.openai, "base_url", args.base_url, "captioning.openai")
    if args.concurrency is not None:
        _set(c, "concurrency", args.concurrency, "captioning")
    mpp = args.mpp if args.mpp is not None else cfg.tiling.geometry()[1]
    try:
        summary = caption_slide(args.selection, args.patches_root, args.out, c, mpp,
                                alignment_spec=alignment_spec(cfg))
    except CaptioningIncomplete as err:
        print(f"pathgen caption: {err}", file=sys.stderr)
        return 3
    except CaptioningAborted as err:
        print(f"pathgen caption: stopped: {err}", file=sys.stderr)
        return 4
    print(json.dumps(summary, indent=2))
    return 0
