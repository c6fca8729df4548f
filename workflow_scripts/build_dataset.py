"""Snakemake script of rule `build_dataset` (logic: pathgen.dataset.build)."""

from pathgen.config import validate_config
from pathgen.dataset.build import build_dataset, file_ids_from_sheet
from pathgen.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
cfg = validate_config(snakemake.config, "the workflow config")  # noqa: F821
build_dataset(list(snakemake.input.captions), snakemake.params.out_dir, cfg.dataset,  # noqa: F821
              images_root=snakemake.params.images_root,  # noqa: F821
              file_ids=file_ids_from_sheet(cfg.slides.sample_sheet))
