"""Snakemake script for rule build_instruct (logic: pathgen.instruct.build)."""

from pathgen.config import validate_config
from pathgen.instruct.build import build_instruct
from pathgen.instruct.chat import chat_for
from pathgen.logs import setup_logging
from pathgen.paths import Layout
from pathgen.slide_state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
cfg = validate_config(sm.config)
L = Layout(cfg)
captions = [str(L.captions(s)) for s in slides_with_status(sm.input.captions)]
chat = chat_for(cfg) if cfg.instruct.generator == "llm" else None
build_instruct(captions, sm.params.out_dir, cfg.instruct, patches_root=sm.params.patches_root,
               chat=chat)
