"""Snakemake script of rule `build_dataset` (logic: pathgen.dataset.build.build_dataset).

Everything comes from the rule: params hold the dataset settings, the run's file ids (sample
sheet + dataset.file_ids, read when the DAG was built) and the captions/features folders;
the input, the caption chunk outcomes (which slides finished)."""

from pathgen.config.dataset import DatasetConfig
from pathgen.dataset.build import build_dataset
from pathgen.logs import setup_logging
from pathgen.captioning.files import slide_captions_file
from pathgen.features.files import slide_features_file
from pathgen.runner.state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
p = sm.params
slides = slides_with_status(sm.input.captions)
build_dataset([str(slide_captions_file(p.captions_dir, s)) for s in slides], p.out_dir,
              DatasetConfig.model_validate(p.settings), images_root=p.images_root, file_ids=p.file_ids,
              features={s: slide_features_file(p.features_dir, s) for s in slides})  # for dataset.dedup_cosine
