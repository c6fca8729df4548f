# Instruction data (PathGen-Instruct style) from the accepted captions of all captioned slides.


if CFG.instruct.enabled:

    ALL_TARGETS.append(str(L.root / "instruct" / "pathgen_instruct.json"))

    rule build_instruct:
        input:
            captions=chunk_outputs("caption", CAPTION_CHUNKS),
        output:
            json=L.root / "instruct" / "pathgen_instruct.json",
            parquet=L.root / "instruct" / "pathgen_instruct.parquet",
            card=L.root / "instruct" / "instruct_card.json",
        params:
            out_dir=L.root / "instruct",
            patches_root=L.selection_dir() / "patches",
            settings=CFG.instruct.model_dump(mode="json"),
        log:
            L.log("build_instruct"),
        benchmark:
            L.benchmark("build_instruct")
        threads: threads_of("build_instruct")
        resources:
            **res("build_instruct"),
        conda:
            "../envs/llm.yaml"
        script:
            "../workflow_scripts/build_instruct.py"
