"""`pathgen instruct`: caption JSONLs -> PathGen-Instruct JSON/Parquet + images."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from ..cli import add_config_args, add_config_flag

    p = sub.add_parser("instruct", help="Build instruction data (CLOSE/OPEN, LLaVA format) from captions")
    p.add_argument("captions", nargs="+", help="Per-slide caption JSONL files")
    p.add_argument("--out", required=True, help="Output folder")
    p.add_argument("--patches-root", default=None,
                   help="Folder the records' `image` paths are relative to (default: beside each JSONL)")
    add_config_flag(p, "--generator", key="instruct.generator", choices=["offline", "llm"])
    add_config_args(p)
    p.set_defaults(func=_main)


def _main(args) -> int:
    from ..cli import config_from_args
    from .build import build_instruct
    from .chat import TextChat, chat_settings
    from .llm import REPLY_MAX_TOKENS

    cfg = config_from_args(args)  # --generator is instruct.generator
    icfg = cfg.instruct
    chat = (TextChat(chat_settings(cfg.captioning, "instruct.generator 'llm'"), REPLY_MAX_TOKENS)
            if icfg.generator == "llm" else None)
    try:
        card = build_instruct([Path(p) for p in args.captions], args.out, icfg, args.patches_root, chat)
    finally:
        if chat is not None:
            chat.close()
    print(f"{card['n_items']} items ({card['n_close']} CLOSE, {card['n_open']} OPEN), "
          f"{card['n_rejected']} rejected -> {args.out}")
    return 0
