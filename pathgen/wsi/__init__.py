"""Slide access: open with clear errors, resolve level-0 µm/px, read levels as RGB."""

from .mpp import MppError, mpp_from_properties, resolve_mpp
from .slide import SlideError, open_slide, read_rgb

__all__ = ["SlideError", "MppError", "open_slide", "read_rgb", "resolve_mpp", "mpp_from_properties"]
