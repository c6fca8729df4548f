"""Snakemake script of rule `build_dataset` (logic: pathgen.dataset.build)."""

from pathgen.config import validate_config
from pathgen.dataset.build import build_dataset, file_ids_from_sheet
from pathgen.logs import setup_logging
from pathgen.paths import Layout
from pathgen.slide_state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
cfg = validate_config(sm.config, "the workflow config")
L = Layout(cfg)
slides = slides_with_status(sm.input.captions)
captions = [str(L.captions(s)) for s in slides]
build_dataset(captions, sm.params.out_dir, cfg.dataset, images_root=sm.params.images_root,
              file_ids=file_ids_from_sheet(cfg.slides.sample_sheet),
              features={s: L.features(s) for s in slides})  # read only for dataset.dedup_cosine
