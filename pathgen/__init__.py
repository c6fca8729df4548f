"""pathgen: whole-slide images -> captioned patches -> pathology CLIP, with evaluations."""

__version__ = "0.1.0"
