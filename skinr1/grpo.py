"""Stage 3: GRPO on multiple-choice questions with R_format + R_gran + R_malignancy (Eq. 4-8).

The policy continues the SFT adapter (or, for the "RL without SFT" ablation, a fresh LoRA on
the base model). With ``beta > 0`` TRL keeps a frozen copy of the starting adapter as the
reference, which gives the paper's KL to the SFT policy. ``engine: unsloth`` swaps in
Unsloth's loader on a CUDA GPU; ``use_vllm`` hands generation to vLLM. Both are GPU-only
options that are switched by parameters alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from skinr1.config import GRPOParams, ModelParams
from skinr1.model import load_model, load_processor
from skinr1.prompts import template, user_message
from skinr1.sft import latest_checkpoint, lora_config


def rl_dataset(rows: list[dict], prompt_style: str = "paper"):
    """Question rows (``mcq.Question.to_row()``) as TRL's vision GRPO format: a conversational
    ``prompt`` and a decoded ``image``; the remaining columns reach the reward functions."""
    import datasets

    rl = template("rl", prompt_style)
    records = [
        {**r, "prompt": user_message(rl.format(question=r["question"]), prompt_style)} for r in rows
    ]
    ds = datasets.Dataset.from_list(records)
    return ds.cast_column("image", datasets.Image())


def _policy(model: ModelParams, cfg: GRPOParams, adapter: str | None, seed: int):
    """The trainable policy and the LoRA config TRL should apply (None when already a PeftModel)."""
    if cfg.engine == "unsloth":
        return _unsloth_policy(model, cfg, adapter, seed)
    base = load_model(model.base, dtype=model.dtype, trust_remote_code=model.trust_remote_code,
                      attn_implementation=model.attn_implementation)  # fmt: skip
    if adapter:
        from peft import PeftModel

        return PeftModel.from_pretrained(base, adapter, is_trainable=True), None
    return base, lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules,
                             cfg.modules_to_save)  # fmt: skip


def _unsloth_policy(model: ModelParams, cfg: GRPOParams, adapter: str | None, seed: int):
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(
            "grpo.engine = 'unsloth' needs a CUDA GPU (Unsloth refuses to import without one); "
            "set grpo.engine: trl to train with plain PEFT + TRL on this machine."
        )
    try:
        from unsloth import FastVisionModel
    except ImportError as exc:
        raise ImportError(
            "grpo.engine = 'unsloth' needs the GPU extra: pip install -c requirements/gpu.txt "
            "-e '.[gpu]'"
        ) from exc
    policy, _ = FastVisionModel.from_pretrained(
        model.base, load_in_4bit=False, fast_inference=cfg.use_vllm,
        dtype=getattr(torch, model.dtype),
    )  # fmt: skip
    if adapter:
        from peft import PeftModel

        return PeftModel.from_pretrained(policy, adapter, is_trainable=True), None
    # vLLM cannot apply LoRA to the vision tower, so only the language layers are adapted.
    policy = FastVisionModel.get_peft_model(
        policy, finetune_vision_layers=False, finetune_language_layers=True,
        finetune_attention_modules=True, finetune_mlp_modules=True, r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, random_state=seed,
        use_gradient_checkpointing="unsloth",
    )  # fmt: skip
    return policy, None


def train_grpo(model: ModelParams, cfg: GRPOParams, train_dataset, *, adapter: str | None,
               seed: int, run_dir: Path, out_dir: Path) -> list[dict]:  # fmt: skip
    """Run GRPO, resuming from ``run_dir``; save the adapter and the log history to ``out_dir``."""
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from skinr1.rewards import get_reward_funcs

    if cfg.beta <= 0:
        raise ValueError(
            "grpo.beta must be > 0: the paper regularises toward the SFT policy (Eq. 4)"
        )
    processor = load_processor(model.base, max_pixels=model.max_pixels, min_pixels=model.min_pixels,
                               trust_remote_code=model.trust_remote_code)  # fmt: skip
    policy, peft_config = _policy(model, cfg, adapter, seed)
    on_gpu = torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=str(run_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        num_generations=cfg.num_generations, temperature=cfg.temperature, beta=cfg.beta,
        loss_type=cfg.loss_type, learning_rate=cfg.learning_rate,
        max_completion_length=cfg.max_completion_length, logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps, save_total_limit=2, report_to=[], seed=seed, data_seed=seed,
        bf16=on_gpu and model.dtype == "bfloat16", use_cpu=not on_gpu, use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode, gradient_checkpointing=on_gpu, dataloader_num_workers=0,
        reward_weights=[1.0] * len(cfg.rewards),  # Eq. 5 is a plain sum; the scales live in Eq. 6-8
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=policy, reward_funcs=get_reward_funcs(cfg.rewards), args=args,
        train_dataset=train_dataset, processing_class=processor, peft_config=peft_config,
    )  # fmt: skip
    trainer.train(resume_from_checkpoint=latest_checkpoint(run_dir))
    history = [h for h in trainer.state.log_history if "reward" in h]
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(tmp)
    (tmp / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return history


def reward_curve(history: list[dict], run: str, reward_names: list[str]) -> list[dict]:
    """Rows (run, step, reward, one column per reward function) for plots/grpo_rewards.csv."""
    rows = []
    for h in history:
        row = {"run": run, "step": h["step"], "reward": h["reward"]}
        for name in reward_names:
            key = next(
                (k for k in h if k.startswith("rewards/") and name in k and k.endswith("/mean")),
                None,
            )
            row[name] = h.get(key) if key else None
        rows.append(row)
    return rows
