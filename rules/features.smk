# Patch embeddings, one job per slide: features_<encoder>/<slide>.h5 under the tiling folder.

ALL_TARGETS.extend(str(L.features(s)) for s in SLIDE_IDS)


rule extract_features:
    input:
        slide=slide_path,
        coords=L.coords("{slide}"),
    output:
        features=L.features("{slide}"),
    params:
        # the encoder definition and every features setting: a change re-runs the job
        encoder=CFG.features.encoder,
        encoder_spec=CFG.encoder_spec().model_dump(mode="json"),
        settings=CFG.features.model_dump(mode="json"),
    log:
        L.log("extract_features", "{slide}"),
    benchmark:
        L.benchmark("extract_features", "{slide}")
    threads: threads_of("extract_features")
    resources:
        **res("extract_features"),
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/extract_features.py"
