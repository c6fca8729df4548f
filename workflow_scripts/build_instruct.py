"""Snakemake script for rule build_instruct (logic: pathgen.instruct.build). Everything comes
from the rule: the caption chunk outcomes (input), the captions folder, the instruct section
and the resolved chat settings of the llm generator (params)."""

from pathgen.config.instruct import InstructConfig
from pathgen.instruct.build import build_instruct
from pathgen.instruct.chat import TextChat, chat_from_params
from pathgen.instruct.llm import REPLY_MAX_TOKENS
from pathgen.logs import setup_logging
from pathgen.captioning.files import slide_captions_file
from pathgen.runner.state import slides_with_status

sm = snakemake  # noqa: F821 (injected by Snakemake)
setup_logging(sm.log[0])
icfg = InstructConfig.model_validate(sm.params.settings)
captions = [str(slide_captions_file(sm.params.captions_dir, s))
            for s in slides_with_status(sm.input.captions)]
chat = TextChat(chat_from_params(sm.params.chat), REPLY_MAX_TOKENS) if sm.params.chat else None
try:
    build_instruct(captions, sm.params.out_dir, icfg, patches_root=sm.params.patches_root, chat=chat)
finally:
    if chat is not None:
        chat.close()
