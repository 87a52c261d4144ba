"""Loading the base vision-language model: Qwen2.5-VL from a Hugging Face id
(``Qwen/Qwen2.5-VL-7B-Instruct``) or a local directory, its processor, and merged adapters.

The embedded default points ``model.base`` at the directory ``skinr1.embedded.tiny_model``
writes; nothing here knows how that model is built.
"""

from __future__ import annotations

from pathlib import Path

# A base model folder may carry the examples it was pre-trained on (the embedded tiny model's
# warm-up set), as a dataset in the prompt/completion/images form; SFT's replay draws from it.
REPLAY_DIR = "warmup_data"

# Qwen2.5-VL's chat template for image+text turns, without the `{%- -%}` next to literal
# newlines that would strip the newlines between turns.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def image_processor(max_pixels: int, min_pixels: int):
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    # The PIL processor needs no torchvision (whose PyPI build breaks beside the CPU torch).
    return Qwen2VLImageProcessorPil(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=14, merge_size=2,
        temporal_patch_size=2,
    )  # fmt: skip


def image_only_processor_class():
    from transformers import Qwen2_5_VLProcessor

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        """Qwen2.5-VL processor without a video processor (upstream fails to build/reload one
        offline without torchvision); loaded explicitly so TRL sees a real multimodal processor."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            kwargs.pop("video_processor", None)
            self.video_processor = None
            super().__init__(
                image_processor, tokenizer, None, chat_template=chat_template, **kwargs
            )

        @classmethod
        def get_attributes(cls):
            return ["image_processor", "tokenizer"]

    return ImageOnlyQwen2_5_VLProcessor


def check_model_source(name_or_path: str) -> None:
    """Fail early, naming the parameter, when a local model path does not exist."""
    p = Path(name_or_path)
    looks_local = (
        name_or_path.startswith((".", "/", "~")) or p.exists() or name_or_path.count("/") != 1
    )
    if looks_local and not (p / "config.json").exists():
        raise FileNotFoundError(
            f"model.base = {name_or_path!r}: no config.json there. Run `dvc repro base_model` to "
            "build the embedded tiny model, or set model.base in params.yaml to a Hugging Face id "
            "such as Qwen/Qwen2.5-VL-7B-Instruct or to an existing local checkpoint directory."
        )


def load_processor(name_or_path: str, *, max_pixels: int, min_pixels: int,
                   trust_remote_code: bool = False):  # fmt: skip
    """The processor, always multimodal (a silent fallback to a bare tokenizer breaks TRL)."""
    check_model_source(name_or_path)
    from transformers import AutoProcessor, AutoTokenizer

    local = Path(name_or_path)
    if (local / "processor_config.json").exists() or (local / "preprocessor_config.json").exists():
        cls = image_only_processor_class()
        tok = AutoTokenizer.from_pretrained(local, trust_remote_code=trust_remote_code)
        tok.padding_side = "left"
        if getattr(tok, "image_token", None) is None:
            tok.image_token, tok.video_token = "<|image_pad|>", "<|video_pad|>"
        if not (local / "tokenizer_config.json").exists() or "qwen" not in str(local).lower():
            proc = cls(image_processor=image_processor(max_pixels, min_pixels), tokenizer=tok,
                       chat_template=tok.chat_template or CHAT_TEMPLATE)  # fmt: skip
            return proc
    proc = AutoProcessor.from_pretrained(
        name_or_path, max_pixels=max_pixels, min_pixels=min_pixels,
        trust_remote_code=trust_remote_code,
    )  # fmt: skip
    if not hasattr(proc, "image_processor"):
        raise TypeError(
            f"{name_or_path}: AutoProcessor returned {type(proc).__name__}, not a VLM processor"
        )
    proc.tokenizer.padding_side = "left"
    return proc


def load_model(name_or_path: str, *, dtype: str = "float32", trust_remote_code: bool = False,
               device_map: str | None = None, attn_implementation: str | None = None):  # fmt: skip
    """Qwen2.5-VL for conditional generation, from a hub id or a local directory."""
    check_model_source(name_or_path)
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    kwargs = dict(dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code)
    if device_map:
        kwargs["device_map"] = device_map
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(name_or_path, **kwargs)


def load_merged(model, adapters: list[str], *, device_map: str | None = None):
    """The base model (``model``: the ``model`` params) with ``adapters`` merged in, in order."""
    from peft import PeftModel

    m = load_model(model.base, dtype=model.dtype, trust_remote_code=model.trust_remote_code,
                   attn_implementation=model.attn_implementation, device_map=device_map)  # fmt: skip
    for a in adapters:
        m = PeftModel.from_pretrained(m, a).merge_and_unload()
    return m


def save_merged(model, adapters: list[str], dest: Path | str) -> Path:
    """Write ``load_merged(model, adapters)`` and its processor to ``dest`` once, by the main
    process (the others wait); for engines that load a checkpoint from disk (vLLM, Unsloth) and
    for training a fresh LoRA on top of the SFT policy."""
    from skinr1.training import state

    dest = Path(dest)
    st = state()
    if st.is_main_process and not (dest / "config.json").exists():
        tmp = dest.with_name(dest.name + ".partial")
        load_merged(model, adapters).save_pretrained(tmp)
        load_processor(model.base, max_pixels=model.max_pixels, min_pixels=model.min_pixels,
                       trust_remote_code=model.trust_remote_code).save_pretrained(tmp)  # fmt: skip
        tmp.rename(dest)
    st.wait_for_everyone()
    return dest
