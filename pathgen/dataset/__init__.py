"""Caption dataset assembly: PathGen JSON, open_clip CSV, WebDataset shards, card, gallery."""


__all__ = ["build_dataset", "output_paths", "OUTPUTS", "read_pathgen_json", "write_pathgen_json"]

from ..lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "OUTPUTS": ".build",
    "build_dataset": ".build",
    "output_paths": ".build",
    "read_pathgen_json": ".pathgen_json",
    "write_pathgen_json": ".pathgen_json",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
