"""A fake SLURM for bench/submissions.py: stdlib-only `sbatch`, `squeue`, `sacct`, ... scripts
in this folder (put it first on PATH; they run on the system python and import fakeslurm.py
beside them) and `run_snakemake.py`, Snakemake's CLI with local jobs only touched."""

from pathlib import Path

BIN = Path(__file__).resolve().parent  # the folder to put first on PATH
