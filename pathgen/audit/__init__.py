"""Caption audit loop (docs/dataset.md "Auditing captions"): a seeded, stratified sample of the
final pairs (sample.py), a local review page (server.py, pages in pathgen/data/audit/), the
reviewers' verdict files (verdicts.py) and their scores (score.py)."""
