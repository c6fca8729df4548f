# Tissue segmentation + patch grid, one job per slide: coords HDF5, QC JPEG, tissue GeoJSON.
from pathgen.tiling import mpp_overrides_for_run

# slide -> (mpp override or None, where it came from); the override CSV is read once.
TILE_MPP = mpp_overrides_for_run(CFG, SLIDES.values())

ALL_TARGETS.extend(str(L.coords(s)) for s in SLIDE_IDS)


rule tile:
    input:
        slide=slide_path,
    output:
        coords=L.coords("{slide}"),
        qc=L.tiling_qc("{slide}"),
        contours=L.contours("{slide}"),
    params:
        # every tiling setting, so a changed setting re-runs the job (params change trigger)
        settings=CFG.tiling.model_dump(mode="json"),
        mpp=lambda wc: TILE_MPP[wc.slide][0],
        mpp_source=lambda wc: TILE_MPP[wc.slide][1],
        default_mpp=CFG.slides.default_mpp,
    log:
        L.log("tile", "{slide}"),
    benchmark:
        L.benchmark("tile", "{slide}")
    threads: threads_of("tile")
    resources:
        **res("tile"),
    conda:
        "../envs/wsi.yaml"
    script:
        "../workflow_scripts/tile.py"
