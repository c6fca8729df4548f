"""One self-contained HTML page summarising a run (also embedded in `snakemake --report`)."""
