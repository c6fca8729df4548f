"""Snakemake script for rule tile (logic: pathgen.tiling.pipeline.tile_slide)."""

import logging
import sys

from pathgen.config.tiling import TilingConfig
from pathgen.logs import setup_logging
from pathgen.tiling import tile_slide
from pathgen.wsi import SlideError

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
p = snakemake.params  # noqa: F821
try:
    tile_slide(snakemake.input.slide, snakemake.output.coords,  # noqa: F821
               TilingConfig.model_validate(p.settings), qc=snakemake.output.qc,  # noqa: F821
               geojson=snakemake.output.contours, mpp_override=p.mpp,  # noqa: F821
               mpp_override_source=p.mpp_source or "override", default_mpp=p.default_mpp,
               slide_id=snakemake.wildcards.slide)  # noqa: F821
except SlideError as err:  # unreadable slide / no mpp: say why in the log, fail this job only
    logging.getLogger("pathgen.tile").error("%s", err)
    sys.exit(1)
