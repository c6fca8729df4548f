"""Trained agents: SFT data for the describe/revise agents, LoRA fine-tuning of a Hugging Face
vision-language model, and a merged export that the transformers backend and vLLM load.

Modules: ``teacher`` (patch, teacher description) pairs; ``llava`` the LLaVA conversation
records; ``vocab`` + ``corrupt`` (rule-based) and ``corrupt_llm`` the controlled edits of the
revise data; ``split`` train/val by slide; ``build`` the build-data stage; ``sft`` examples and
batches; ``train`` the resumable LoRA loop; ``export`` the adapter merge; ``cli``.
"""
