# Trained agents (off by default: agents.enabled). build-data turns this run's caption records
# (or, with agents.data.teacher: backend, fresh descriptions of the selected patches) into
# describe and revise SFT data; agents_train LoRA-trains each agent and exports the merged
# model folder. Use it in a later run by naming that folder in the captioning config:
# captioning.backend: transformers, captioning.transformers.model: results/agents/describe/model.


from pathgen.agents.workflow import build_data_params, train_params

if CFG.agents.enabled:

    AGENTS_DATA = L.agents_data_files(L.agents_data_dir)

    rule agents_build_data:
        input:
            captions=expand(rules.caption.output.done, chunk=CAPTION_CHUNKS),
        output:
            **AGENTS_DATA,
        log:
            L.log("agents_build_data"),
        benchmark:
            L.benchmark("agents_build_data")
        conda:
            "../envs/llm.yaml"
        threads: threads_of("agents_build_data")
        resources:
            **res("agents_build_data"),
        # params: agents.data, captioning, tiling's µm/px and the input and output folders
        # (pathgen/agents/workflow.py)
        params:
            **build_data_params(CFG),
        script:
            "../workflow_scripts/agents_build_data.py"

    rule agents_train:
        input:
            **L.agents_sft_files(L.agents_data_dir, "{agent}"),
        output:
            **L.agents_model_files(L.agents_run_files(L.agents_run_dir("{agent}"))["model"]),
        log:
            L.log("agents_train", "{agent}"),
        benchmark:
            L.benchmark("agents_train", "{agent}")
        wildcard_constraints:
            agent="describe|revise",
        conda:
            "../envs/llm.yaml"
        threads: threads_of("agents_train")
        resources:
            **res("agents_train"),
        params:
            **train_params(CFG),
            run_dir=get_agents_run_dir,
        script:
            "../workflow_scripts/agents_train.py"
