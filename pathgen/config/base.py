"""Shared pieces of the config schema.

Every section is a pydantic model with ``extra="forbid"`` so a mistyped key fails at
workflow start (and in the CLI) with the key's dotted path and the allowed names.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Section(BaseModel):
    """Base of all config sections: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class ConfigError(ValueError):
    """A config problem, phrased for the user (names the key and the fix)."""


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Walk the schema along ``loc`` (without its last element) and return the model there."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """Return the first BaseModel inside Optional[...] / Union[...] / dict[str, X], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap(arg)
        if found is not None:
            return found
    return annotation if isinstance(annotation, type) else None


def format_validation_error(err: ValidationError, root: type[BaseModel], source: str) -> str:
    """Turn pydantic's error list into lines that name the dotted key and what is allowed."""
    lines = [f"Invalid configuration in {source}:"]
    for item in err.errors():
        loc = tuple(item.get("loc", ()))
        key = ".".join(str(p) for p in loc) or "<root>"
        if item.get("type") == "extra_forbidden":
            parent = _model_at(root, loc)
            allowed = sorted(parent.model_fields) if parent is not None else []
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = f"  - unknown key '{key}'"
            if hint:
                msg += f" (did you mean '{hint[0]}'?)"
            if allowed:
                msg += f"; allowed keys here: {', '.join(allowed)}"
            lines.append(msg)
        else:
            got = item.get("input")
            shown = repr(got) if not isinstance(got, dict) else "{...}"
            lines.append(f"  - '{key}': {item.get('msg')} (got {shown})")
    return "\n".join(lines)
