"""`pathgen audit sample`: a seeded, stratified sample of a dataset's final pairs.

Input: a dataset folder as `build_dataset` writes it (docs/dataset.md): ``pathgen.json`` and
``open_clip.csv`` (the pairs, in the same order; the CSV names each pair's image), and the
WebDataset shards' ``<key>.json`` metadata, which carry the describe and revise texts the
final caption was made from (per-slide caption JSONL files given with ``caption_files`` win
over the shards). Output: an audit folder with ``manifest.json`` (items, texts, their
sentences, strata) and ``images/<item id>.<ext>`` (hard links, copies or symlinks of the
dataset's patch files).

Allocation over strata: ``proportional`` (Sainte-Laguë: each stratum's share of the sample
follows its share of the pairs) or ``equal`` (round robin); when the sample is at least as
large as the number of strata every stratum gets one item first, and no stratum gets more
items than it has. Within a stratum, items are drawn with an RNG seeded by (seed, stratum), so
the same seed and dataset give the same sample; the manifest lists them in a seeded shuffle
(strata interleaved, so a reviewer's order does not follow the strata).
"""

from __future__ import annotations

import csv
import json
import logging
import random
import tarfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..atomic import write_json
from ..dataset.files import (DATASET_CARD_JSON, DATASET_IMAGES_DIR, DATASET_SHARDS_DIR, OPEN_CLIP_CSV,
                             PATHGEN_JSON)
from ..dataset.pathgen_json import read_pathgen_json
from ..dataset.records import load_slide
from ..dataset.writers import place_image, sample_key
from .files import AUDIT_IMAGES_DIR, manifest_file, verdicts_dir
from .sentences import split_sentences

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "pathgen-audit/1"
# The texts of an item a reviewer can judge: `caption` is the pair's own (final) text.
TEXT_PARTS = ("caption", "describe", "revise")
ALLOCATIONS = ("proportional", "equal")
# --stratify values taken from the pair itself rather than a per-slide table
PAIR_STRATA = ("slide_id", "model", "backend")
NO_STRATA = ("none", "")


class AuditError(ValueError):
    """An audit input or folder that cannot be used (the message says why and what to do)."""


def read_card(dataset_dir: Path) -> dict:
    p = Path(dataset_dir) / DATASET_CARD_JSON
    if not p.exists():
        return {}
    try:
        card = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AuditError(f"{p} is not valid JSON ({err}); rebuild the dataset") from None
    return card if isinstance(card, dict) else {}


def _csv_rows(dataset_dir: Path, card: dict) -> list[dict]:
    path = dataset_dir / OPEN_CLIP_CSV
    sep = card.get("csv_separator") or "\t"
    img_key = card.get("csv_img_key") or "filepath"
    cap_key = card.get("csv_caption_key") or "title"
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter=sep)
        if img_key not in (reader.fieldnames or []):
            raise AuditError(f"{path}: no column {img_key!r} (header {reader.fieldnames}, separator "
                             f"{sep!r} from {DATASET_CARD_JSON}); is this a pathgen dataset folder?")
        return [{"image": row.get(img_key) or "", "caption": row.get(cap_key) or ""} for row in reader]


def read_shard_meta(shards_dir: Path) -> dict[str, dict]:
    """``{sample key: metadata}`` from the ``<key>.json`` members of the WebDataset shards."""
    out: dict[str, dict] = {}
    for shard in sorted(Path(shards_dir).glob("*.tar")):
        try:
            with tarfile.open(shard, "r:") as tar:
                for member in tar:
                    if member.isfile() and member.name.endswith(".json"):
                        fh = tar.extractfile(member)
                        meta = json.loads(fh.read()) if fh is not None else None
                        if isinstance(meta, dict):
                            out[member.name[:-len(".json")]] = meta
        except (tarfile.TarError, json.JSONDecodeError, UnicodeDecodeError) as err:
            log.warning("%s: cannot read its metadata (%s); its describe/revise texts are missing",
                        shard, err)
    return out


def caption_texts(caption_files: list[Path]) -> dict[tuple[str, int, int], dict]:
    """``{(slide, x, y): record}`` of per-slide caption JSONL files (docs/architecture.md)."""
    out = {}
    for f in caption_files:
        sc = load_slide(f)
        for r in sc.accepted + sc.rejected:
            out[(str(r["slide_id"]), int(r["x"]), int(r["y"]))] = r
    return out


def _image_of(dataset_dir: Path, listed: str, slide: str, x: int, y: int) -> Path | None:
    if listed:
        p = Path(listed)
        p = p if p.is_absolute() else dataset_dir / p
        if p.is_file():
            return p
    folder = dataset_dir / DATASET_IMAGES_DIR / slide
    for cand in sorted(folder.glob(f"{x}_{y}.*")) if folder.is_dir() else []:
        if cand.is_file():
            return cand
    return None


def read_pairs(dataset_dir: str | Path, caption_files: list[Path] | None = None) -> list[dict]:
    """The dataset's final pairs with their image file and describe/revise texts.

    Each pair: ``id`` (the WebDataset sample key, unique in a dataset), ``slide_id``, ``x``,
    ``y``, ``caption`` (the pair's text), ``describe``, ``revise``, ``model``, ``backend``,
    ``image`` (Path). Pairs whose image file is gone are left out with a warning."""
    d = Path(dataset_dir)
    for name in (PATHGEN_JSON, OPEN_CLIP_CSV):
        if not (d / name).exists():
            raise AuditError(f"{d / name} does not exist; --dataset must be a folder written by "
                             "`pathgen build-dataset` (results/dataset)")
    card = read_card(d)
    release = read_pathgen_json(d / PATHGEN_JSON)
    rows = _csv_rows(d, card)
    if len(rows) != len(release):
        raise AuditError(f"{d}: {PATHGEN_JSON} has {len(release)} pairs but {OPEN_CLIP_CSV} has "
                         f"{len(rows)}; the folder is half rebuilt (run build_dataset again)")
    meta = read_shard_meta(d / DATASET_SHARDS_DIR)
    texts = caption_texts([Path(f) for f in caption_files or []])
    pairs, missing, ids = [], [], set()
    for item, row in zip(release, rows):
        slide, x, y = item["wsi_id"], int(item["x"]), int(item["y"])
        key = sample_key(slide, x, y)
        if key in ids:
            raise AuditError(f"{d / PATHGEN_JSON}: position ({x}, {y}) of slide {slide!r} appears twice")
        ids.add(key)
        image = _image_of(d, row["image"], slide, x, y)
        if image is None:
            missing.append(key)
            continue
        m = texts.get((slide, x, y)) or meta.get(key) or {}
        pairs.append({"id": key, "slide_id": slide, "x": x, "y": y, "caption": item["caption"],
                      "describe": str(m.get("describe") or ""), "revise": str(m.get("revise") or ""),
                      "model": str(m.get("model") or ""), "backend": str(m.get("backend") or ""),
                      "image": image})
    if missing:
        log.warning("%d pairs have no image file in %s (left out of the sample), e.g. %s",
                    len(missing), d / DATASET_IMAGES_DIR, ", ".join(missing[:3]))
    no_text = sum(not p["describe"] and not p["revise"] for p in pairs)
    if pairs and no_text:
        log.warning("%d of %d pairs have no describe/revise text (no shard metadata or caption "
                    "files): only their final caption can be judged", no_text, len(pairs))
    return pairs


def allocate(sizes: dict[str, int], n: int, allocation: str = "proportional") -> dict[str, int]:
    """Items per stratum (module docstring): at most ``n`` in all, at most ``sizes[s]`` each."""
    if allocation not in ALLOCATIONS:
        raise AuditError(f"allocation {allocation!r}: choose one of {', '.join(ALLOCATIONS)}")
    alloc = {s: 0 for s in sizes}
    left = min(int(n), sum(sizes.values()))
    names = sorted((s for s in sizes if sizes[s] > 0), key=lambda s: (-sizes[s], s))
    if left >= len(names):
        for s in names:
            alloc[s] = 1
        left -= len(names)
    while left > 0:
        open_ = [s for s in names if alloc[s] < sizes[s]]
        if allocation == "equal":
            pick = min(open_, key=lambda s: (alloc[s], -sizes[s], s))
        else:  # Sainte-Laguë: the largest quotient size / (2 * seats + 1)
            pick = max(open_, key=lambda s: (sizes[s] / (2 * alloc[s] + 1), sizes[s], s))
        alloc[pick] += 1
        left -= 1
    return alloc


def stratum_of(stratify: str, slide_strata: dict[str, str] | None = None,
               default: str = "unknown") -> Callable[[dict], str]:
    """A pair's stratum: a field of the pair (PAIR_STRATA), one stratum for all (`none`), or
    the pair's slide looked up in ``slide_strata`` (e.g. slide -> cancer type)."""
    if stratify in NO_STRATA:
        return lambda p: "all"
    if stratify in PAIR_STRATA:
        return lambda p: str(p.get(stratify) or default)
    table = slide_strata or {}
    return lambda p: str(table.get(p["slide_id"]) or default)


def stratified_sample(pairs: list[dict], n: int, seed: int, strata: Callable[[dict], str],
                      allocation: str = "proportional") -> tuple[list[dict], dict[str, dict]]:
    """(sampled pairs with their ``stratum``, ``{stratum: {population, sampled}}``)."""
    if n < 1:
        raise AuditError(f"--n {n}: the sample needs at least one item")
    groups: dict[str, list[dict]] = {}
    for p in pairs:
        groups.setdefault(strata(p), []).append(p)
    alloc = allocate({s: len(g) for s, g in groups.items()}, n, allocation)
    picked = []
    for s in sorted(groups):
        members = sorted(groups[s], key=lambda p: p["id"])
        for p in random.Random(f"{seed}:{s}").sample(members, alloc[s]):
            picked.append({**p, "stratum": s})
    picked.sort(key=lambda p: p["id"])
    random.Random(seed).shuffle(picked)
    info = {s: {"population": len(groups[s]), "sampled": alloc[s]} for s in sorted(groups)}
    return picked, info


def _item(p: dict, image_rel: str) -> dict:
    texts = {"caption": p["caption"], "describe": p["describe"], "revise": p["revise"]}
    return {"id": p["id"], "slide_id": p["slide_id"], "x": p["x"], "y": p["y"], "stratum": p["stratum"],
            "image": image_rel, "model": p["model"], "backend": p["backend"], "texts": texts,
            "sentences": {k: split_sentences(v) for k, v in texts.items()}}


def _saved_verdicts(out: Path) -> list[Path]:
    d = verdicts_dir(out)
    return sorted(d.glob("*.json")) if d.is_dir() else []


def write_audit(out_dir: str | Path, picked: list[dict], info: dict, images: str = "hardlink",
                force: bool = False) -> dict:
    """Write the audit folder (manifest + images); returns the manifest.

    An existing folder with saved verdicts keeps them only when the sample is the same items
    (rerunning the same command); a different sample there needs ``force`` (the verdicts of
    items no longer sampled are then kept in their files but not shown or scored)."""
    out = Path(out_dir)
    mpath = manifest_file(out)
    if mpath.exists() and _saved_verdicts(out) and not force:
        try:
            old = {i["id"] for i in json.loads(mpath.read_text(encoding="utf-8"))["items"]}
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            old = None
        if old != {p["id"] for p in picked}:
            raise AuditError(f"{out} already holds a different sample with saved verdicts "
                             f"({', '.join(p.name for p in _saved_verdicts(out))}); choose a new --out "
                             "or pass --force to replace the sample")
    img_dir = out / AUDIT_IMAGES_DIR
    img_dir.mkdir(parents=True, exist_ok=True)
    items, wanted = [], set()
    for p in picked:
        suffix = p["image"].suffix.lower() or ".jpg"
        name = f"{p['id']}{suffix}"
        place_image(p["image"], img_dir / name, images)
        wanted.add(name)
        items.append(_item(p, f"{AUDIT_IMAGES_DIR}/{name}"))
    for f in img_dir.iterdir():
        if f.name not in wanted and (f.is_file() or f.is_symlink()):
            f.unlink()
    manifest = {"format": MANIFEST_FORMAT, **info, "n": len(items), "items": items}
    write_json(mpath, manifest)
    return manifest


def load_manifest(audit_dir: str | Path) -> dict:
    path = manifest_file(audit_dir)
    if not path.exists():
        raise AuditError(f"{path} does not exist; make the folder with `pathgen audit sample --out "
                         f"{audit_dir}`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AuditError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT \
            or not isinstance(manifest.get("items"), list):
        raise AuditError(f"{path} is not an audit manifest ({MANIFEST_FORMAT})")
    return manifest


def sample_audit(dataset_dir: str | Path, out_dir: str | Path, n: int, seed: int = 0,
                 stratify: str = "cancer_type",
                 slide_strata: dict[str, str] | Callable[[list[str]], dict[str, str]] | None = None,
                 allocation: str = "proportional", images: str = "hardlink",
                 caption_files: list[Path] | None = None, force: bool = False) -> dict:
    """Sample ``n`` pairs of a dataset folder into an audit folder; returns the manifest.
    ``slide_strata``: slide -> stratum, or a function of the dataset's slide ids giving it."""
    d = Path(dataset_dir)
    pairs = read_pairs(d, caption_files)
    if not pairs:
        raise AuditError(f"{d} has no pairs with an image to sample")
    if callable(slide_strata):
        slide_strata = slide_strata(sorted({p["slide_id"] for p in pairs}))
    picked, strata = stratified_sample(pairs, n, seed, stratum_of(stratify, slide_strata), allocation)
    card = read_card(d)
    info = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dataset": str(d.resolve()), "caption_stage": (card.get("caption_stage") or {}).get("stage", "summarize"),
            "seed": seed, "n_requested": n, "stratify": stratify or "none", "allocation": allocation,
            "population": len(pairs), "strata": strata}
    manifest = write_audit(out_dir, picked, info, images, force)
    counts = Counter(i["stratum"] for i in manifest["items"])
    log.info("audit sample: %d of %d pairs, strata %s -> %s", manifest["n"], len(pairs),
             dict(sorted(counts.items())), out_dir)
    return manifest
