"""torchrun target: register pathgen's model configs, then run open_clip's own trainer.

``torchrun -m open_clip_train.main`` would not know architectures shipped in
pathgen/model_configs (e.g. ``pathgen-tiny-vit``), so multi-GPU runs go through this shim;
it only registers configs and hands ``sys.argv`` to ``open_clip_train.main.main``.
"""

from __future__ import annotations

import os
import sys

from .models import register_model_configs


def main() -> None:
    extra = [p for p in os.environ.get("PATHGEN_MODEL_CONFIGS", "").split(os.pathsep) if p]
    register_model_configs(extra)
    from open_clip_train.main import main as open_clip_main

    open_clip_main(sys.argv[1:])


if __name__ == "__main__":
    main()
