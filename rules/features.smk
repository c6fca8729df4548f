# Patch embeddings, one job per slide chunk: features_<encoder>/<slide>.h5 under the tiling
# folder for each member whose tiling finished (the encoder is loaded once per chunk).


rule extract_features:
    input:
        tiles=rules.tile.output.done,
    output:
        done=L.chunk_done("features", "{chunk}"),
    log:
        L.log("extract_features", "{chunk}"),
    benchmark:
        L.benchmark("extract_features", "{chunk}")
    conda:
        "../envs/torch.yaml"
    threads: threads_of("extract_features")
    resources:
        **res("extract_features", CHUNKS),
    params:
        # settings (the encoder definition and every features setting), files, upstream
        **chunk_params("features"),
        members=chunk_members(CHUNKS),
    script:
        "../workflow_scripts/chunk.py"
