"""The per-slide runner: slide chunks, declared stages, the chunk job, slide state, recovery
and status (docs/architecture.md, "Runner").

* :mod:`.chunks`  stable chunk membership (``<results>/chunks.tsv``);
* :mod:`.stage`   the :class:`Stage` declaration and its registry (each stage lives in its
  area: ``pathgen/<area>/chunk_stage.py``);
* :mod:`.params`  parse time: a chunk rule's params (settings, file templates, upstream);
* :mod:`.context` the job's :class:`ChunkContext`, from the rule's params and inputs only;
* :mod:`.job`     the chunk loop (reuse / block / run / quarantine, open-close hooks);
* :mod:`.state`   per-slide state records and the status table;
* :mod:`.status`, :mod:`.recover`  `pathgen status` and `pathgen recover`.
"""

from .context import ChunkContext
from .job import ChunkFailed, InfrastructureError, run_chunk, run_chunk_job
from .stage import Stage, get_stage, register_stage

__all__ = ["ChunkContext", "ChunkFailed", "InfrastructureError", "Stage", "get_stage",
           "register_stage", "run_chunk", "run_chunk_job"]
