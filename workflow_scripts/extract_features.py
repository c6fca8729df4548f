"""Snakemake script for rule extract_features (logic: pathgen.features.extract)."""

from pathgen.config import validate_config
from pathgen.features.extract import extract_features, set_torch_threads
from pathgen.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
cfg = validate_config(snakemake.config)  # noqa: F821
fc = cfg.features
# Reading workers take their own processes; torch gets the job's remaining cores.
set_torch_threads(max(1, snakemake.threads - fc.num_workers))  # noqa: F821
extract_features(snakemake.input.slide, snakemake.input.coords,  # noqa: F821
                 snakemake.output.features, encoder=snakemake.params.encoder, cfg=cfg,  # noqa: F821
                 batch_size=fc.batch_size, num_workers=fc.num_workers, device=fc.device,
                 dtype=fc.dtype, reader=fc.reader, tile_cache_mb=fc.tile_cache_mb, progress=False)
