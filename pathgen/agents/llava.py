"""LLaVA conversation records (the format LLaVA-style trainers read):
``{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."},
{"from": "gpt", "value": "..."}]}``; ``image`` is relative to the data's image folder.
Extra keys (slide_id, split, agent, source, edit) ride along; LLaVA readers ignore them.
"""

from __future__ import annotations

IMAGE_TOKEN = "<image>"


class LlavaFormatError(ValueError):
    pass


def conversation(rec_id: str, image: str, prompt: str, answer: str, **extra) -> dict:
    return {"id": rec_id, "image": image,
            "conversations": [{"from": "human", "value": f"{IMAGE_TOKEN}\n{prompt}"},
                              {"from": "gpt", "value": answer}], **extra}


def first_exchange(rec: dict, where: str = "record") -> tuple[str, str]:
    """(prompt without the image token, answer) of a record's first human/gpt turn pair."""
    turns = rec.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2 or not rec.get("image"):
        raise LlavaFormatError(f"{where} is not a LLaVA conversation with an image (needs 'image' "
                               "and 'conversations': [{from: human}, {from: gpt}])")
    human, gpt = turns[0], turns[1]
    if human.get("from") != "human" or gpt.get("from") != "gpt":
        raise LlavaFormatError(f"{where}: the first two turns must be from 'human' then 'gpt', got "
                               f"{human.get('from')!r}, {gpt.get('from')!r}")
    prompt = str(human.get("value", "")).replace(IMAGE_TOKEN, "").strip()
    return prompt, str(gpt.get("value", "")).strip()
