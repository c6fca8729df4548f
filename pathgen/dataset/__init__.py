"""Caption dataset assembly: PathGen JSON, open_clip CSV, WebDataset shards, card, gallery."""

from .build import OUTPUTS, build_dataset, output_paths
from .pathgen_json import read_pathgen_json, write_pathgen_json

__all__ = ["build_dataset", "output_paths", "OUTPUTS", "read_pathgen_json", "write_pathgen_json"]
