# Dataset assembly: every captioned slide's final JSONL -> results/dataset/ (PathGen JSON,
# open_clip CSV, WebDataset shards + count.json, card, gallery). A pure function of the
# per-slide files; images/ and shards/*.tar are written beside the declared outputs and
# reused on reruns.
from pathgen.dataset.build import OUTPUTS as _DATASET_OUTPUTS
from pathgen.dataset.workflow import build_dataset_params

DATASET_FILES = {k: str(L.dataset_dir / v) for k, v in _DATASET_OUTPUTS.items()}


rule build_dataset:
    input:
        # chunk outcomes: the dataset holds the slides whose captioning finished
        captions=expand(rules.caption.output.done, chunk=CAPTION_CHUNKS),
    output:
        **DATASET_FILES,
    log:
        L.log("build_dataset"),
    benchmark:
        L.benchmark("build_dataset")
    conda:
        "../envs/torch.yaml"
    threads: threads_of("build_dataset")
    resources:
        **res("build_dataset"),
    # params: the dataset settings, file ids and caption/feature folders (a change of any
    # rebuilds the dataset; pathgen/dataset/workflow.py) and the output folder
    params:
        **build_dataset_params(CFG),
        out_dir=get_dataset_out_dir,
    script:
        "../workflow_scripts/build_dataset.py"
