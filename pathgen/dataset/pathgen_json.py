"""PathGen-1.6M release format: a JSON list of
``{"wsi_id": str, "position": ["x", "y"], "caption": str, "file_id": str}``
(position = level-0 top-left as strings; file_id = GDC file UUID, absent when unknown)."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_json
from ..jsonl_store import read_jsonl


def to_release(records: list[dict], file_ids: dict[str, str] | None = None) -> list[dict]:
    out = []
    for r in records:
        item = {"wsi_id": str(r["slide_id"]), "position": [str(int(r["x"])), str(int(r["y"]))],
                "caption": str(r["caption"])}
        fid = r.get("file_id") or (file_ids or {}).get(str(r["slide_id"]))
        if fid:
            item["file_id"] = str(fid)
        out.append(item)
    return out


def write_pathgen_json(path: str | Path, records: list[dict], file_ids: dict[str, str] | None = None) -> int:
    items = to_release(records, file_ids)
    write_json(path, items, indent=None)
    return len(items)


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
