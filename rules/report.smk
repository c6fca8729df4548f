# The one-page summary (self-contained HTML) — also the centrepiece of `snakemake --report`.
from pathgen.report import workflow as report_workflow


report: "report_workflow.rst"


REPORT_HTML = L.report_html
# The settings shown, the slides, their QC images and the stages' folders (rerun trigger).
REPORT_PARAMS = report_workflow.report_params(CFG, SLIDE_IDS)


rule build_report:
    input:
        # Every final target of the other stages (the report reads what they wrote).
        get_report_inputs,
    output:
        report(
            REPORT_HTML,
            caption="report_caption.rst",
            category="Summary",
        ),
    log:
        L.log("build_report"),
    benchmark:
        L.benchmark("build_report")
    conda:
        "../envs/report.yaml"
    threads: threads_of("build_report")
    resources:
        **res("build_report"),
    params:
        report=REPORT_PARAMS,
    script:
        "../workflow_scripts/build_report.py"
