"""Slide access: open with clear errors, resolve level-0 µm/px, read levels as RGB."""


__all__ = ["SlideError", "MppError", "open_slide", "read_rgb", "resolve_mpp", "mpp_from_properties"]

from ..lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "MppError": ".mpp",
    "mpp_from_properties": ".mpp",
    "resolve_mpp": ".mpp",
    "SlideError": ".slide",
    "open_slide": ".slide",
    "read_rgb": ".slide",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
