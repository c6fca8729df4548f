# Instruction data (PathGen-Instruct style) from the accepted captions of all captioned slides.


INSTRUCT_FILES = L.instruct_outputs()

if CFG.instruct.enabled:

    rule build_instruct:
        input:
            captions=expand(rules.caption.output.done, chunk=CAPTION_CHUNKS),
        output:
            **INSTRUCT_FILES,
        log:
            L.log("build_instruct"),
        benchmark:
            L.benchmark("build_instruct")
        conda:
            "../envs/llm.yaml"
        threads: threads_of("build_instruct")
        resources:
            **res("build_instruct"),
        params:
            out_dir=L.instruct_dir,
            patches_root=L.selection_patches_root(),
            captions_dir=L.captions_dir(),
            settings=CFG.instruct.model_dump(mode="json"),
            # the llm generator's chat model (summarize agent): a change re-runs the job
            chat=(
                chat_definition("instruct.generator 'llm'")
                if CFG.instruct.generator == "llm"
                else None
            ),
        script:
            "../workflow_scripts/build_instruct.py"
