"""SFT examples from LLaVA conversation files, encoded for an image-text-to-text model.

Each example is the inference prompt (the processor's chat template over one image + the
human text, with the generation prompt) followed by the answer tokens and EOS. Only the answer
is trained (prompt and image tokens are labelled -100), so the model learns what to reply to
exactly the prompt the transformers backend sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .llava import first_exchange

IGNORE = -100  # label of tokens that carry no loss (Hugging Face convention)


class SftDataError(ValueError):
    pass


@dataclass(frozen=True)
class SftExample:
    id: str
    image: Path
    prompt: str
    answer: str


def load_examples(json_path: str | Path, image_folder: str | Path) -> list[SftExample]:
    path = Path(json_path)
    if not path.is_file():
        raise SftDataError(f"SFT file {path} does not exist (run `pathgen agents build-data`)")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SftDataError(f"SFT file {path} is not valid JSON: {err}") from None
    if not isinstance(records, list):
        raise SftDataError(f"SFT file {path} must hold a JSON list of LLaVA conversations")
    out = []
    for i, rec in enumerate(records):
        prompt, answer = first_exchange(rec, f"{path} record {i}")
        image = Path(image_folder) / rec["image"]
        if not image.is_file():
            raise SftDataError(f"{path} record {i}: image {image} is missing; the records' "
                               "'image' paths are relative to --image-folder (the data card's "
                               "image_folder)")
        out.append(SftExample(str(rec.get("id", i)), image, prompt, answer))
    return out


def _tokenizer(processor):
    return getattr(processor, "tokenizer", processor)


def encode(processor, ex: SftExample, max_length: int) -> dict:
    """One example -> 1-D ``input_ids``/``labels``/``attention_mask`` + the processor's image
    tensors (batch dim 1). The answer is cut to fit ``max_length``; a prompt that alone is
    longer is an error (image tokens must never be cut)."""
    import torch
    from PIL import Image

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ex.prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    with Image.open(ex.image) as im:
        inputs = processor(images=[im.convert("RGB")], text=[text], return_tensors="pt")
    tok = _tokenizer(processor)
    prompt_ids = inputs.pop("input_ids")[0]
    inputs.pop("attention_mask", None)
    answer = tok(ex.answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    room = max_length - len(prompt_ids)
    if room < 2:
        raise SftDataError(f"example {ex.id}: the prompt alone is {len(prompt_ids)} tokens (image "
                           f"tokens included), over agents.train.max_length={max_length}; raise it")
    answer_ids = torch.tensor(answer[:room], dtype=prompt_ids.dtype)
    ids = torch.cat([prompt_ids, answer_ids])
    out = {"input_ids": ids, "labels": torch.cat([torch.full_like(prompt_ids, IGNORE), answer_ids]),
           "attention_mask": torch.ones_like(ids)}
    for key, value in inputs.items():
        if value.dim() == 2 and value.shape == (1, len(prompt_ids)):
            # per-token extras (Qwen2-VL's mm_token_type_ids): the answer is text, type 0
            out[key] = torch.cat([value[0], value.new_zeros(len(answer_ids))])
        else:
            out[key] = value
    return out


def collate(encoded: list[dict], pad_id: int) -> dict:
    """Right-pad the token tensors (and per-token extras); concatenate image tensors along
    dim 0 (LLaVA: one [3, H, W] per image; Qwen2-VL: patch rows + one grid row per image)."""
    import torch

    n = max(len(e["input_ids"]) for e in encoded)
    batch = {}
    for key, fill in (("input_ids", pad_id), ("labels", IGNORE), ("attention_mask", 0)):
        batch[key] = torch.stack([torch.cat([e[key], e[key].new_full((n - len(e[key]),), fill)])
                                  for e in encoded])
    for key in encoded[0]:
        if key in batch:
            continue
        if encoded[0][key].dim() == 1:  # per-token extras: padded like input_ids, with 0
            batch[key] = torch.stack([torch.cat([e[key], e[key].new_zeros(n - len(e[key]))])
                                      for e in encoded])
        else:
            batch[key] = torch.cat([e[key] for e in encoded])
    return batch


class EncodedDataset:
    """Map-style dataset for a torch DataLoader (encoding runs in its workers)."""

    def __init__(self, examples: list[SftExample], processor, max_length: int):
        self.examples, self.processor, self.max_length = examples, processor, max_length

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return encode(self.processor, self.examples[i], self.max_length)
