"""Snakemake script for rule build_instruct (logic: pathgen.instruct.build)."""

from pathgen.config import validate_config
from pathgen.instruct.build import build_instruct
from pathgen.instruct.chat import chat_for
from pathgen.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
cfg = validate_config(snakemake.config)  # noqa: F821
chat = chat_for(cfg) if cfg.instruct.generator == "llm" else None
build_instruct(snakemake.input.captions, snakemake.params.out_dir, cfg.instruct,  # noqa: F821
               patches_root=snakemake.params.patches_root, chat=chat)  # noqa: F821
