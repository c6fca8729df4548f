# Dataset assembly: every captioned slide's final JSONL -> results/dataset/ (PathGen JSON,
# open_clip CSV, WebDataset shards + count.json, card, gallery). A pure function of the
# per-slide files; images/ and shards/*.tar are written beside the declared outputs and
# reused on reruns.
from pathgen.dataset.build import OUTPUTS as _DATASET_OUTPUTS
from pathgen.dataset.build import run_file_ids

DATASET_FILES = {k: str(L.dataset_dir / v) for k, v in _DATASET_OUTPUTS.items()}
ALL_TARGETS.extend(DATASET_FILES.values())


rule build_dataset:
    input:
        # chunk outcomes: the dataset holds the slides whose captioning finished
        captions=chunk_outputs("caption", CAPTION_CHUNKS),
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
    params:
        out_dir=get_dataset_out_dir,
        images_root=str(CFG.dataset.images_root or (L.selection_dir() / "patches")),
        # every dataset setting (caption_stage, dedup_cosine, ...): a change rebuilds the dataset
        settings=CFG.dataset.model_dump(mode="json"),
        # the ids themselves (sample sheet `file_id` column, dataset.file_ids): edits rebuild it
        file_ids=run_file_ids(CFG.slides.sample_sheet, CFG.dataset.file_ids),
        captions_dir=str(L.captions_dir()),
        features_dir=str(L.features_dir()),
    script:
        "../workflow_scripts/build_dataset.py"
