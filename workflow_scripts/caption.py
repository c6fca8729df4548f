"""Snakemake script of rule `caption`: one slide's selection -> captions JSONL."""

from pathgen.captioning.stage import caption_slide
from pathgen.config import validate_config
from pathgen.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
cfg = validate_config(snakemake.config, "the workflow config")  # noqa: F821
caption_slide(snakemake.input.selection, snakemake.params.patches_root,  # noqa: F821
              snakemake.output.captions, cfg.captioning,  # noqa: F821
              target_mpp=cfg.tiling.geometry()[1], full_cfg=cfg)
