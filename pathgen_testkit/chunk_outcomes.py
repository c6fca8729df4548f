"""Chunk outcome files (`<stage folder>/chunks/<chunk>.json`, docs/architecture.md "Chunks
and per-slide state") for tests of the aggregate rules' scripts."""

from __future__ import annotations

import json
from pathlib import Path


def write_chunk(path: Path, stage: str, members: dict[str, str]) -> Path:
    """A chunk outcome file as the chunk jobs write it (pathgen/runner/job.py: stage, chunk,
    members [{slide_id, status}]); only the fields slides_with_status reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stage": stage, "chunk": path.stem, "members": [
        {"slide_id": s, "status": st} for s, st in members.items()]}))
    return path
