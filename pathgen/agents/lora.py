"""Load a Hugging Face vision-language model + processor and wrap it with LoRA adapters (peft)
on the language model's linear layers only; save/restore the adapter weights."""

from __future__ import annotations

from pathlib import Path


class AgentModelError(OSError):
    pass


def load_base(model: str, tcfg, device: str | None = None):
    """(model, processor) through AutoModelForImageTextToText / AutoProcessor."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ..captioning.backends.transformers import resolve_device_dtype

    dev, dtype = resolve_device_dtype(device or tcfg.device, tcfg.dtype)
    kw = dict(trust_remote_code=tcfg.trust_remote_code)
    try:
        processor = AutoProcessor.from_pretrained(model, **kw)
        vlm = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype, **kw)
    except OSError as err:
        raise AgentModelError(f"agents.train.base_model {model!r} could not be loaded ({err}); give "
                              "a local folder or pre-download it into the HF cache (HF_HOME) on a "
                              "machine with internet") from err
    return vlm.to(dev), processor


def target_pattern(names: list[str]) -> str:
    """peft regex (full match) for the named linear layers inside the language model only: the
    vision tower has q_proj/k_proj/v_proj too and stays adapter-free."""
    return rf".*language_model.*\.({'|'.join(names)})"


def wrap_lora(vlm, tcfg):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=tcfg.lora_r, lora_alpha=tcfg.lora_alpha, lora_dropout=tcfg.lora_dropout,
                     target_modules=target_pattern(tcfg.lora_target_modules), bias="none")
    try:
        model = get_peft_model(vlm, cfg)
    except ValueError as err:
        raise ValueError(f"agents.train.lora_target_modules {tcfg.lora_target_modules} match no "
                         f"layer of the language model ({err}); use the names of its attention/MLP "
                         "linear layers, e.g. q_proj, k_proj, v_proj, o_proj") from None
    if tcfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return model


def load_adapter_weights(model, checkpoint: Path) -> None:
    """Put a checkpoint's adapter weights into an already wrapped model (same LoRA config)."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    result = set_peft_model_state_dict(model, load_peft_weights(str(checkpoint), device="cpu"))
    bad = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if bad:
        raise AgentModelError(f"checkpoint {checkpoint} does not fit the model's adapters "
                              f"(unexpected {bad[:3]}...); it was made with other LoRA settings")
