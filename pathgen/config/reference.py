"""Markdown configuration reference generated from the schema (README embeds its output;
a test keeps the two in sync)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel

from . import PathgenConfig
from .base import _unwrap


def _default_repr(field) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        return "(see below)"
    try:
        text = json.dumps(value, default=str)
    except TypeError:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin in (list, dict, tuple):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def rows(model: type[BaseModel] = PathgenConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _unwrap(field.annotation)
        is_dict = getattr(field.annotation, "__origin__", None) is dict
        if isinstance(sub, type) and issubclass(sub, BaseModel) and not is_dict:
            out.append((key, "section", "", field.description or ""))
            out.extend(rows(sub, key + "."))
        elif isinstance(sub, type) and issubclass(sub, BaseModel) and is_dict:
            out.append((key, f"map of name → {sub.__name__}", _default_repr(field), field.description or ""))
            out.extend(rows(sub, key + ".<name>."))
        else:
            out.append((key, _type_name(field.annotation), _default_repr(field), field.description or ""))
    return out


def markdown() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    def cell(s):
        return str(s).replace("\n", " ")

    def esc(s):
        return cell(s).replace("|", "\\|")

    for key, typ, default, desc in rows():
        lines.append(f"| `{key}` | {cell(typ)} | `{esc(default)}` | {esc(desc)} |" if default
                     else f"| `{key}` | {cell(typ)} | | {esc(desc)} |")
    return "\n".join(lines) + "\n"


START, END = "<!-- CONFIG-REFERENCE:START -->", "<!-- CONFIG-REFERENCE:END -->"


def readme_with_reference(text: str) -> str:
    """README text with the block between the markers replaced by the current reference."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown()}{END}{tail}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:2] == ["--update-readme"]:
        readme = Path(sys.argv[2] if len(sys.argv) > 2 else "README.md")
        readme.write_text(readme_with_reference(readme.read_text()))
    else:
        print(markdown(), end="")
