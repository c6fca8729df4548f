"""PathGen-Instruct-style instruction data (CLOSE multiple choice + OPEN Q&A) from captions."""
