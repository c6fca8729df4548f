"""PathGen-1.6M release format: a JSON list of
``{"wsi_id": str, "position": ["x", "y"], "caption": str, "file_id": str}``
(position = level-0 top-left as strings; file_id = GDC file UUID, absent when unknown)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..atomic import json_array_writer
from ..jsonl_store import read_jsonl


def release_item(r: dict, file_ids: dict[str, str] | None = None) -> dict:
    """One record (slide_id, x, y, caption[, file_id]) in the release format."""
    item = {"wsi_id": str(r["slide_id"]), "position": [str(int(r["x"])), str(int(r["y"]))],
            "caption": str(r["caption"])}
    fid = r.get("file_id") or (file_ids or {}).get(str(r["slide_id"]))
    if fid:
        item["file_id"] = str(fid)
    return item


def to_release(records: Iterable[dict], file_ids: dict[str, str] | None = None) -> list[dict]:
    return [release_item(r, file_ids) for r in records]


@contextlib.contextmanager
def pathgen_json_writer(path: str | Path, file_ids: dict[str, str] | None = None
                        ) -> Iterator[Callable[[dict], None]]:
    """The release JSON (one list) written one record at a time: yields ``add(record)``;
    the file is byte-identical to :func:`write_pathgen_json` of the same records."""
    with json_array_writer(path, indent=None) as add_item:
        yield lambda r: add_item(release_item(r, file_ids))


def write_pathgen_json(path: str | Path, records: Iterable[dict], file_ids: dict[str, str] | None = None) -> int:
    n = 0
    with pathgen_json_writer(path, file_ids) as add:
        for r in records:
            add(r)
            n += 1
    return n


def _get(item: dict, name: str):
    """Case-insensitive key lookup: PathGen's own loader example reads 'WSI_id' while the
    released file has 'wsi_id' (a reported user error); accept either."""
    if name in item:
        return item[name]
    lower = {k.lower(): k for k in item}
    return item[lower[name.lower()]] if name.lower() in lower else None


def _load(path: Path):
    """The file's JSON document, or its records when it is JSON Lines (one caption object per
    line, read by the one validated JSONL reader)."""
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        json_err = err
    try:
        return list(read_jsonl(path))
    except ValueError as err:
        raise ValueError(f"{path} is neither JSON ({json_err}) nor JSON Lines ({err}); expected a list of "
                         '{"wsi_id", "position": ["x", "y"], "caption"} objects') from None


def read_pathgen_json(path: str | Path) -> list[dict]:
    """Load a PathGen release JSON (ours or the original) into
    ``{wsi_id, x, y, caption, file_id}`` dicts; errors say which item and key is wrong."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"PathGen JSON {path} does not exist")
    data = _load(path)
    if isinstance(data, dict):
        for key in ("data", "annotations", "items"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of caption objects, got {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValueError(f"{path} item {i}: expected an object, got {type(item).__name__}")
        wsi = _get(item, "wsi_id")
        pos = _get(item, "position")
        cap = _get(item, "caption")
        missing = [k for k, v in (("wsi_id", wsi), ("position", pos), ("caption", cap)) if v is None]
        if missing:
            raise ValueError(f"{path} item {i} lacks {missing} (has keys {sorted(item)}); the "
                             "release format is {wsi_id, position: [x, y], caption, file_id}")
        if isinstance(pos, str):
            pos = pos.strip("[]() ").replace(",", " ").split()
        try:
            x, y = (int(float(v)) for v in pos)
        except (TypeError, ValueError):
            raise ValueError(f"{path} item {i}: position {pos!r} is not [x, y]") from None
        out.append({"wsi_id": str(wsi), "x": x, "y": y, "caption": str(cap),
                    "file_id": _get(item, "file_id")})
    return out
