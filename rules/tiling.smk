# Tissue segmentation + patch grid, one job per slide chunk: per slide coords HDF5, QC JPEG,
# tissue GeoJSON (pathgen.tiling), each slide quarantined on its own failure.
from pathgen.tiling import mpp_overrides_for_run

# slide -> (mpp override or None, where it came from); the override CSV is read once.
TILE_MPP = mpp_overrides_for_run(CFG, SLIDES.values())


rule tile:
    input:
        slides=chunk_slide_files,
        demo=get_demo_chunk_done,
    output:
        done=L.chunk_done("tile", "{chunk}"),
    log:
        L.log("tile", "{chunk}"),
    benchmark:
        L.benchmark("tile", "{chunk}")
    conda:
        "../envs/wsi.yaml"
    threads: threads_of("tile")
    resources:
        **res("tile", CHUNKS),
    params:
        # settings (every tiling setting: a change re-runs the job), files, upstream
        **chunk_params("tile"),
        members=chunk_members(CHUNKS),
        mpp=get_tile_mpp,
        default_mpp=CFG.slides.default_mpp,
    script:
        "../workflow_scripts/chunk.py"
