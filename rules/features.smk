# Patch embeddings, one job per slide chunk: features_<encoder>/<slide>.h5 under the tiling
# folder for each member whose tiling finished (the encoder is loaded once per chunk).

ALL_TARGETS.extend(chunk_outputs("features", CHUNKS))


rule extract_features:
    input:
        tiles=L.chunk_done("tile", "{chunk}"),
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
        members=chunk_members(CHUNKS),
        # the encoder definition and every features setting: a change re-runs the job
        settings={
            "encoder": CFG.features.encoder,
            "encoder_spec": CFG.encoder_spec().model_dump(mode="json"),
            "features": CFG.features.model_dump(mode="json"),
        },
    script:
        "../workflow_scripts/extract_features.py"
