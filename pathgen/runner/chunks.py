"""Slide chunks: the unit of work of the per-slide stages.

Every per-slide stage runs as one Snakemake job per chunk of slides (rules/*.smk), so the
DAG of 10,000 slides has ~160 jobs per stage, not 10,000, and a SLURM submission carries a
walltime-sized batch of work. Inside a chunk job each slide still runs on its own
(pathgen/chunk_run.py), with its own state record: a slide that fails is quarantined, the
rest of the chunk goes on.

Membership is stable: it is recorded in ``<results_dir>/chunks.tsv`` (slide_id, chunk), read
at every workflow start and only appended to. New slides fill the last chunk up to the chunk
size, then open new chunks, so adding slides never moves an existing slide; a chunk that
gained members reruns, and its job does the work only for the new slides. Removed slides stay
in the registry (they return to their chunk if re-added). When the chunk size is lowered
below a chunk's membership (e.g. a shorter `cluster.max_job_minutes`), the members past the
new size are the only ones ever moved, to new chunks.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..atomic import write_text

log = logging.getLogger(__name__)

HEADER = "slide_id\tchunk"


def chunk_name(index: int) -> str:
    return f"chunk_{index:05d}"


def _index(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def read_registry(path: Path) -> dict[str, str]:
    """slide_id -> chunk from the registry TSV (empty when the file does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    lines = path.read_text().splitlines()
    if lines and lines[0] != HEADER:
        raise ValueError(f"{path}: not a pathgen chunk registry (first line {lines[0]!r}, expected "
                         f"{HEADER!r}); move it away and rerun to start a new one")
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        slide, sep, chunk = line.partition("\t")
        if not sep or not chunk.startswith("chunk_") or not chunk[6:].isdigit():
            raise ValueError(f"{path} line {n}: expected 'slide_id<TAB>chunk_NNNNN', got {line!r}; "
                             "fix or delete the line (deleting only re-assigns that slide)")
        out[slide] = chunk
    return out


def assign(slide_ids: list[str], registry: dict[str, str], size: int) -> dict[str, str]:
    """The registry extended with ``slide_ids`` (order kept), chunks capped at ``size``."""
    size = max(1, int(size))
    reg = dict(registry)
    counts: dict[str, int] = {}
    for chunk in reg.values():
        counts[chunk] = counts.get(chunk, 0) + 1
    # Chunk size lowered: keep the first `size` registered members, re-assign the rest.
    overfull = {c for c, n in counts.items() if n > size}
    if overfull:
        seen: dict[str, int] = {}
        for slide in list(reg):
            c = reg[slide]
            if c in overfull:
                seen[c] = seen.get(c, 0) + 1
                if seen[c] > size:
                    del reg[slide]
                    counts[c] -= 1
        log.warning("chunk size %d is below the membership of %d chunk(s): their extra slides move "
                    "to new chunks", size, len(overfull))
    last = max((_index(c) for c in counts), default=-1)
    fill = counts.get(chunk_name(last), 0) if last >= 0 else size
    for slide in slide_ids:
        if slide in reg:
            continue
        if fill >= size:
            last, fill = last + 1, 0
        reg[slide] = chunk_name(last)
        fill += 1
    return reg


def write_registry(path: Path, registry: dict[str, str]) -> None:
    lines = [HEADER] + [f"{s}\t{c}" for s, c in registry.items()]
    write_text(path, "\n".join(lines) + "\n")


def plan_chunks(slide_ids: list[str], registry_path: Path, size: int,
                write: bool = True) -> dict[str, list[str]]:
    """chunk -> its current members (registry order), for the slides of this run.

    Reads the registry, appends new slides, and rewrites it (atomically) only when it grew.
    """
    registry_path = Path(registry_path)
    old = read_registry(registry_path)
    reg = assign(slide_ids, old, size)
    if write and reg != old:
        write_registry(registry_path, reg)
    current = set(slide_ids)
    chunks: dict[str, list[str]] = {}
    for slide, chunk in reg.items():
        if slide in current:
            chunks.setdefault(chunk, []).append(slide)
    return dict(sorted(chunks.items()))
