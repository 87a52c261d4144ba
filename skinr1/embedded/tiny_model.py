"""The embedded default's base model: a tiny Qwen2.5-VL built offline, and its warm-up.

The tiny model starts from random weights, so ``warm_up`` gives it a short full-parameter
pre-training on rendered lesions (captions and generic visual multiple-choice questions) as a
stand-in for the pre-training and instruction tuning that the 7B model arrives with. It never
sees a diagnosis name: disease knowledge must come from SFT and RL, as in the paper. The
warm-up examples are saved beside the model (``warmup_data/``), which SFT's replay reads.

``python -m skinr1 base-model`` builds and warms it up as params.yaml says.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skinr1.model import (
    CHAT_TEMPLATE,
    REPLAY_DIR,
    image_only_processor_class,
    image_processor,
    load_model,
    load_processor,
)

# Qwen2.5-VL's special tokens, in the order and spelling of the released tokenizer.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip
# Answer tags as single tokens: the tiny model then learns the format in a few hundred steps.
TAG_TOKENS = ["<thinking>", "</thinking>", "<diagnosis>", "</diagnosis>",
              "<final diagnosis>", "</final diagnosis>"]  # fmt: skip


@dataclass
class TinyConfig:
    """Size of the embedded default model (about 2.5 M parameters)."""

    vocab_size: int = 3000
    hidden_size: int = 192
    num_layers: int = 3
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    vision_depth: int = 2
    vision_hidden: int = 128
    vision_heads: int = 4
    image_size: int = 112
    vision_intermediate: int | None = None  # None: twice vision_hidden (7B: 3420 for 1280)


def _corpus(extra: list[str]) -> list[str]:
    """Text the tiny tokenizer is trained on: the knowledge base, the prompts, feature words."""
    from skinr1 import prompts
    from skinr1.taxonomy import KNOWLEDGE_DIR

    texts = [
        getattr(prompts, n)
        for n in dir(prompts)
        if n.isupper() and isinstance(getattr(prompts, n), str)
    ]
    for f in sorted(KNOWLEDGE_DIR.glob("*.yaml")):
        texts.append(f.read_text(encoding="utf-8"))
    texts += extra
    texts += [f"{c}: {c}. {c}, {c}." for c in "ABCDEFGHIJ"]
    return texts


def tokenizer_phrases(rulebook) -> list[str]:
    """The phrasing the project's generators write (feature descriptions, textbook rationales,
    hierarchical completions), so that the tiny tokenizer spends few tokens on it: every token
    of a trajectory is paid for in each training step and sampled completion."""
    from skinr1.embedded.demo_data import VIEWS, rationale_opening
    from skinr1.embedded.lesions import SKIN_TONES

    out = [rationale_opening(m, t) for m in VIEWS for t in SKIN_TONES]
    for name, rule in sorted(rulebook.rules.items()):
        out.append(f"The image shows a {rule.features.describe()}. {rule.text}")
        out.append(f"{name}, {name.capitalize()} is a subtype of {name}, and is generally "
                   "classified as benign, malignant or precancerous in situ.")  # fmt: skip
    return out


def build_tokenizer(out_dir: Path, vocab_size: int, extra_text: list[str] | None = None):
    """Train a byte-level BPE on project text and wrap it as a Qwen2 tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(extra_text or []), trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        clean_up_tokenization_spaces=False,
    )
    tok.add_tokens(TAG_TOKENS)
    tok.chat_template = CHAT_TEMPLATE
    tok.image_token = "<|image_pad|>"
    tok.video_token = "<|video_pad|>"
    tok.padding_side = "left"
    tok.save_pretrained(out_dir)
    return tok


def build_processor(tokenizer, max_pixels: int, min_pixels: int):
    cls = image_only_processor_class()
    return cls(image_processor=image_processor(max_pixels, min_pixels), tokenizer=tokenizer,
               chat_template=CHAT_TEMPLATE)  # fmt: skip


def build_tiny_model(out_dir: Path | str, cfg: TinyConfig, *, seed: int, extra_text=None):
    """Write a randomly initialised tiny Qwen2.5-VL, its tokenizer and processor to out_dir."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(out_dir, cfg.vocab_size, extra_text)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = cfg.hidden_size // cfg.num_heads
    half = head_dim // 2  # mrope sections (temporal, height, width) must sum to head_dim / 2
    section = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_kv_heads, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "mrope_section": section, "rope_theta": 1e6},
            tie_word_embeddings=False, bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=cfg.vision_depth, hidden_size=cfg.vision_hidden, num_heads=cfg.vision_heads,
            intermediate_size=cfg.vision_intermediate or cfg.vision_hidden * 2, out_hidden_size=cfg.hidden_size,
            patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
            fullatt_block_indexes=[cfg.vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out_dir)
    px = cfg.image_size * cfg.image_size
    build_processor(tok, max_pixels=px, min_pixels=px).save_pretrained(out_dir)
    return model, tok


# --- warm-up: a stand-in for pre-training ------------------------------------------------------

ATTRIBUTE_QUESTIONS = {
    "colours": "Which colour is present in this lesion?",
    "structures": "Which dermoscopic structure is visible in this lesion?",
    "symmetry": "Is this lesion symmetric or asymmetric?",
    "border": "How is the border of this lesion?",
}


COARSE_PROMPTS = ("vqa", "diagnosis")
COARSE_ANSWERS = ("letter", "name")


def warmup_examples(rulebook, n: int, seed: int, *, image_size: int,
                    prompt_style: str = "paper", taxonomy=None, coarse_share: float = 0.0,
                    coarse_noise: float = 0.0, coarse_prompt: str = "vqa",
                    coarse_mixed: float = 0.0, coarse_answer: str = "letter") -> list[dict]:  # fmt: skip
    """Rendered lesions with captions and visual multiple-choice questions, no diagnosis names.

    Feature sets come from the rule book's diagnoses with random drops and swaps, so the vision
    tower sees the downstream feature combinations without ever being told the disease. A
    ``coarse_share`` of the examples stands in for what a pretrained VLM knows of dermatology: a
    "What type of abnormality ...?" question among four top-level categories of ``taxonomy``,
    answered with the diagnosis's top-level category, or (``coarse_noise`` of them) a wrong one
    — web-scale captions name coarse classes, often wrongly, and never the fine diagnosis.
    ``coarse_prompt`` words that question as the warm-up's generic VQA prompt ("vqa") or as
    the evaluation's own diagnosis prompt ("diagnosis": what instruction tuning gives a 7B
    model is that it follows such a prompt). Each distractor slot is, with probability
    ``coarse_mixed``, any other node of the taxonomy (as the evaluation's questions mix levels)
    and otherwise another top-level category; never a node under the stated category (it would
    be a finer correct option). ``coarse_answer`` is "letter" ("B: melanoma", the form SFT and
    RL write) or "name" (the option's text alone, which the strict parser also reads as one
    option: a pretrained model names what it sees; tying a letter to it is what RL sharpens).
    """
    from skinr1.embedded.lesions import render
    from skinr1.prompts import QUESTION, VQA_TEMPLATE, format_question, template, user_message

    if not 0 <= coarse_share <= 1 or not 0 <= coarse_noise <= 1:
        raise ValueError(
            f"base_model.coarse_share = {coarse_share}, coarse_noise = {coarse_noise}: both must "
            "lie in [0, 1]"
        )
    if not 0 <= coarse_mixed <= 1:
        raise ValueError(f"base_model.coarse_mixed = {coarse_mixed}: must lie in [0, 1]")
    if coarse_prompt not in COARSE_PROMPTS:
        raise ValueError(
            f"base_model.coarse_prompt = {coarse_prompt!r}: expected one of {COARSE_PROMPTS}"
        )
    if coarse_answer not in COARSE_ANSWERS:
        raise ValueError(
            f"base_model.coarse_answer = {coarse_answer!r}: expected one of {COARSE_ANSWERS}"
        )
    if coarse_share and taxonomy is None:
        raise ValueError("warmup_examples: coarse_share > 0 needs the taxonomy")
    top = [c for c in taxonomy.categories() if len(taxonomy.path(c)) == 1] if coarse_share else []

    # Paper style: the RL prompt itself (a 7B instruct model has seen such prompts); compact: a
    # generic VQA prompt, so the diagnostic instruction is first seen in SFT.
    rl_template = template("rl", prompt_style) if prompt_style == "paper" else VQA_TEMPLATE
    coarse_template = (
        template("diagnosis", prompt_style) if coarse_prompt == "diagnosis" else rl_template
    )

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    diagnoses = sorted(rulebook.rules.items())
    vocab = rulebook.vocabulary
    out = []
    for i in range(n):
        node, rule = rng.choice(diagnoses)
        f = rule.features
        colours = list(f.colours) or ["light brown"]
        structures = [s for s in f.structures if rng.random() > 0.2]
        if rng.random() < 0.3:
            structures.append(rng.choice(vocab["structures"]))
        f = type(f)(symmetry=f.symmetry, border=f.border, elevation=f.elevation, size=f.size,
                    colours=tuple(colours), structures=tuple(dict.fromkeys(structures)),
                    surface=f.surface)  # fmt: skip
        img = render(f, nrng, size=image_size, skin_tone=rng.randint(1, 6),
                     modality=rng.choice(["dermoscopic", "dermoscopic", "clinical"]))  # fmt: skip
        caption = f.describe()
        if coarse_share and rng.random() < coarse_share:
            right = taxonomy.path(node)[0]
            if rng.random() < coarse_noise:
                right = rng.choice([c for c in top if c != right])
            banned = {right, *taxonomy.descendants(right)}  # a finer correct option otherwise
            if not coarse_mixed:
                opts = rng.sample([c for c in top if c not in banned], 3)
            else:
                opts = []
                for _ in range(3):
                    pool = taxonomy.categories() if rng.random() < coarse_mixed else top
                    opts.append(rng.choice([c for c in pool if c not in banned and c not in opts]))
            opts.append(right)
            rng.shuffle(opts)
            options = dict(zip("ABCD", opts, strict=True))
            prompt = coarse_template.format(question=format_question(options, QUESTION),
                                            letters="/".join("ABCD"))  # fmt: skip
            choice = f"{'ABCD'[opts.index(right)]}: {right}" if coarse_answer == "letter" else right
            answer = f"<thinking>The image shows a {caption}.</thinking> <final diagnosis>{choice}</final diagnosis>"
        elif i % 2 == 0:
            prompt, answer = "Describe the visual features of this skin lesion.", caption + "."
        else:
            attr = rng.choice([a for a in ATTRIBUTE_QUESTIONS if getattr(f, a)])
            present = getattr(f, attr)
            right = present if isinstance(present, str) else rng.choice(present)
            pool = [
                v
                for v in vocab[attr]
                if v != right and (isinstance(present, str) or v not in present)
            ]
            wrong = rng.sample(pool, min(3, len(pool)))
            opts = wrong + [right]
            rng.shuffle(opts)
            letters = "ABCD"[: len(opts)]
            options = dict(zip(letters, opts, strict=True))
            letter = letters[opts.index(right)]
            prompt = rl_template.format(
                question=format_question(options, ATTRIBUTE_QUESTIONS[attr])
            )
            # "letter: text", the form every answer parser reads as one option.
            choice = f"{letter}: {right}"
            answer = f"<thinking>The image shows a {caption}.</thinking> <final diagnosis>{choice}</final diagnosis>"
        out.append({"prompt": user_message(prompt, prompt_style),
                    "completion": [{"role": "assistant", "content": [{"type": "text", "text": answer}]}],
                    "images": [img]})  # fmt: skip
    return out


def warm_up(model_dir: Path | str, rulebook, *, steps: int, batch_size: int, lr: float, seed: int,
            n_examples: int, image_size: int, prompt_style: str = "paper",
            log_file: Path | None = None, taxonomy=None, coarse_share: float = 0.0,
            coarse_noise: float = 0.0, coarse_prompt: str = "vqa",
            coarse_mixed: float = 0.0, coarse_answer: str = "letter") -> list[dict]:  # fmt: skip
    """Full-parameter training of the tiny model on ``warmup_examples``; saves in place, with
    the examples in ``warmup_data/`` for SFT's replay."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    from skinr1.training import score_labelled_tokens_only

    model_dir = Path(model_dir)
    proc = load_processor(str(model_dir), max_pixels=image_size**2, min_pixels=image_size**2)
    model = load_model(str(model_dir))
    ds = datasets.Dataset.from_list(
        warmup_examples(
            rulebook,
            n_examples,
            seed,
            image_size=image_size,
            prompt_style=prompt_style,
            taxonomy=taxonomy,
            coarse_share=coarse_share,
            coarse_noise=coarse_noise,
            coarse_prompt=coarse_prompt,
            coarse_mixed=coarse_mixed,
            coarse_answer=coarse_answer,
        )  # fmt: skip
    )
    args = SFTConfig(
        output_dir=str(model_dir / "_warmup"), max_steps=steps, per_device_train_batch_size=batch_size,
        learning_rate=lr, lr_scheduler_type="cosine", warmup_steps=max(1, steps // 20),
        logging_steps=max(1, steps // 50), save_strategy="no", report_to=[], bf16=False,
        use_cpu=True, max_length=None, seed=seed, dataloader_num_workers=0,
        gradient_checkpointing=False, disable_tqdm=False,  # TRL defaults to True
    )  # fmt: skip
    score_labelled_tokens_only()
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=proc)
    trainer.train()
    model.save_pretrained(model_dir)
    ds.save_to_disk(str(model_dir / REPLAY_DIR))
    history = [h for h in trainer.state.log_history if "loss" in h]
    if log_file:
        Path(log_file).write_text(json.dumps(history, indent=1))
    return history


def main(argv: list[str] | None = None) -> int:
    """``python -m skinr1 base-model``: build + warm up the tiny model as params.yaml says."""
    from skinr1.config import load_params
    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy

    ap = argparse.ArgumentParser(prog="python -m skinr1 base-model")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default=None, help="output directory (default: base_model.out)")
    args = ap.parse_args(argv)
    params = load_params(args.params, require=("base_model", "model"))
    p = params.base_model
    out = Path(args.out or p.out)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tax = load_taxonomy()
    rules = load_rules(tax)
    cfg = TinyConfig(**p.tiny)
    t0 = time.time()
    build_tiny_model(tmp, cfg, seed=params.seed, extra_text=tokenizer_phrases(rules))
    history = warm_up(tmp, rules, steps=p.warmup_steps, batch_size=p.warmup_batch_size,
                      lr=p.warmup_lr, seed=params.seed, n_examples=p.warmup_examples,
                      image_size=cfg.image_size, prompt_style=params.model.prompt_style,
                      log_file=tmp / "warmup_log.json", taxonomy=tax,
                      coarse_share=p.coarse_share, coarse_noise=p.coarse_noise,
                      coarse_prompt=p.coarse_prompt, coarse_mixed=p.coarse_mixed,
                      coarse_answer=p.coarse_answer)  # fmt: skip
    import shutil

    shutil.rmtree(tmp / "_warmup", ignore_errors=True)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)  # a half-built model never sits at the final path
    first, last = history[0]["loss"], history[-1]["loss"]
    print(f"base model at {out}: warm-up loss {first:.3f} -> {last:.3f} in {time.time() - t0:.0f}s")
    return 0 if math.isfinite(last) else 1
