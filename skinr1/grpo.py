"""Stage 3: GRPO on multiple-choice questions with R_format + R_gran + R_malignancy (Eq. 4-8).

The policy starts from the SFT policy (or, for the "RL without SFT" ablation, from the base
model with a fresh LoRA), and the KL term regularises toward the SFT policy under either engine:
``sft_init: continue`` trains the SFT adapter further and TRL keeps a frozen copy of it as the
reference; ``sft_init: merge`` merges the SFT adapter into the base weights and trains a fresh
LoRA, so the policy with its adapter disabled is the SFT policy (Unsloth's trainer, which drops
TRL's copy, and vLLM need this). ``engine: unsloth`` and ``use_vllm`` are GPU options switched
by parameters alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from skinr1 import model_card
from skinr1.config import (
    GRPO_RUNS,
    ComputeParams,
    GRPOParams,
    LoRAParams,
    ModelParams,
    Params,
    checkpoint_dir,
    fingerprint,
)
from skinr1.model import load_model, load_processor, save_merged
from skinr1.prompts import template, user_message
from skinr1.provenance import code_fingerprint
from skinr1.training import (
    RUN_FILE,
    attach_callbacks,
    check_world,
    last_checkpoint,
    lora_config,
    lora_targets,
    per_device,
    pin_defaults,
    run_record,
    save_adapter,
    score_labelled_tokens_only,
    state,
    trainer_args,
)

STAGE = "grpo"  # python -m skinr1 grpo


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


RUNS = GRPO_RUNS


def grpo_kwargs(cfg: GRPOParams, model: ModelParams, compute: ComputeParams, *, run_dir: Path,
                seed: int, world: int) -> dict:  # fmt: skip
    """GRPOConfig's arguments: paper semantics (``prompts_per_step`` questions x K completions
    per optimiser step over all processes), vLLM as params.yaml says, nothing left to defaults
    that differ between TRL and Unsloth."""
    completions = cfg.prompts_per_step * cfg.num_generations
    return dict(
        **trainer_args(cfg, model, compute, run_dir=run_dir, seed=seed,
                       per_device_batch=per_device(completions, cfg.grad_accum, world,
                                                   "grpo.prompts_per_step x grpo.num_generations")),
        num_generations=cfg.num_generations, temperature=cfg.temperature, beta=cfg.beta,
        loss_type=cfg.loss_type, max_completion_length=cfg.max_completion_length,
        disable_dropout=False, use_vllm=cfg.use_vllm, vllm_mode=cfg.vllm_mode,
        vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        vllm_max_model_length=cfg.vllm_max_model_length,
        vllm_server_host=cfg.vllm_server_host, vllm_server_port=cfg.vllm_server_port,
        reward_weights=[1.0] * len(cfg.rewards),  # Eq. 5 is a plain sum; the scales live in Eq. 6-8
    )  # fmt: skip


def _policy(model: ModelParams, cfg: GRPOParams, lora: LoRAParams, base: str,
            adapter: str | None, seed: int):  # fmt: skip
    """The trainable policy and the LoRA config TRL should apply (None when already a PeftModel).
    ``adapter`` is an adapter to continue (``sft_init: continue``); otherwise a fresh LoRA."""
    if cfg.engine == "unsloth":
        return _unsloth_policy(model, cfg, lora, base, seed)
    policy = load_model(base, dtype=model.dtype, trust_remote_code=model.trust_remote_code,
                        attn_implementation=model.attn_implementation)  # fmt: skip
    if adapter:
        from peft import PeftModel

        # With beta > 0 TRL copies this adapter as a frozen "ref" adapter: KL to the SFT policy.
        return PeftModel.from_pretrained(policy, adapter, is_trainable=True), None
    return policy, lora_config(lora, language_only=language_only(cfg))


def language_only(cfg: GRPOParams) -> bool:
    """vLLM rollouts and Unsloth cannot apply LoRA to the vision tower or the merger."""
    return cfg.use_vllm or cfg.engine == "unsloth"


def _unsloth_policy(model: ModelParams, cfg: GRPOParams, lora: LoRAParams, base: str, seed: int):
    import torch
    from unsloth import FastVisionModel

    policy, _ = FastVisionModel.from_pretrained(
        base, load_in_4bit=False, fast_inference=cfg.use_vllm, dtype=getattr(torch, model.dtype),
        max_seq_length=cfg.max_seq_length, gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        use_exact_model_name=True, trust_remote_code=model.trust_remote_code,
    )  # fmt: skip
    policy = FastVisionModel.get_peft_model(
        policy, target_modules=lora_targets(lora, language_only=True),
        modules_to_save=list(lora.modules_to_save) or None,
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        random_state=seed, use_gradient_checkpointing="unsloth",
    )  # fmt: skip
    return policy, None


def build_trainer(model: ModelParams, cfg: GRPOParams, lora: LoRAParams, compute: ComputeParams,
                  train_dataset, *,
                  adapter: str | None, seed: int, run_dir: Path, merged_dir: Path | None = None):  # fmt: skip
    """The GRPO trainer of one run. ``adapter`` is the SFT adapter (None: RL without SFT); with
    ``sft_init: merge`` it is merged into ``merged_dir`` first and a fresh LoRA is trained."""
    from skinr1.launch import activate_engine

    if cfg.beta <= 0:
        raise ValueError(
            "grpo.beta must be > 0: the paper regularises toward the SFT policy (Eq. 4)"
        )
    activate_engine(cfg.engine)  # before trl: Unsloth patches it at import
    from trl import GRPOConfig, GRPOTrainer

    from skinr1.rewards import get_reward_funcs

    world = check_world(compute)
    # The config comes before the model: under ZeRO-3 it is what partitions the weights at load.
    args = GRPOConfig(**grpo_kwargs(cfg, model, compute, run_dir=run_dir, seed=seed, world=world))
    pin_defaults(args, cfg)
    base, cont = model.base, adapter
    if adapter and cfg.sft_init == "merge":
        if merged_dir is None:
            raise ValueError("grpo.sft_init = 'merge' needs a merged_dir for the merged SFT model")
        base, cont = str(save_merged(model, [adapter], merged_dir)), None
    processor = load_processor(model.base, max_pixels=model.max_pixels, min_pixels=model.min_pixels,
                               trust_remote_code=model.trust_remote_code)  # fmt: skip
    policy, peft_config = _policy(model, cfg, lora, base, cont, seed)
    score_labelled_tokens_only()
    trainer_class = GRPOTrainer
    if merges_for_sampling(cfg, compute):

        class trainer_class(GRPOTrainer):  # noqa: N801
            def _generate_single_turn(self, *args, **kwargs):
                with merged_for_sampling(self.accelerator.unwrap_model(self.model)):
                    return super()._generate_single_turn(*args, **kwargs)

    return trainer_class(
        model=policy, reward_funcs=get_reward_funcs(cfg.rewards), args=args,
        train_dataset=train_dataset, processing_class=processor, peft_config=peft_config,
    )  # fmt: skip


@contextmanager
def merged_for_sampling(model):
    """The LoRA merged into its base layers and dropout off while completions are sampled, then
    the base weights restored bit for bit (unmerging alone would leave rounding in them).

    Sampling then draws from the policy pi_theta itself, as vLLM does at paper scale, rather than
    from a dropout-perturbed copy of it, and each decoded token costs one matmul per layer instead
    of three (measured on the tiny model: 1.30 s -> 0.92 s for 12 completions of 96 tokens).
    The optimisation step is untouched: losses and log-probabilities are computed unmerged, in
    training mode, as before.
    """
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    if not layers:
        yield model
        return
    saved = [(m, m.get_base_layer().weight.detach().clone()) for m in layers]
    training = model.training
    model.eval()
    model.merge_adapter()
    try:
        yield model
    finally:
        model.unmerge_adapter()
        for m, weight in saved:
            m.get_base_layer().weight.data.copy_(weight)
        model.train(training)


def merges_for_sampling(cfg: GRPOParams, compute: ComputeParams) -> bool:
    """Whether ``merged_for_sampling`` applies: TRL's own generation of full weights on each
    process (not vLLM, which samples from merged weights anyway; not Unsloth, which has its own
    fast path; not ZeRO-3, whose weights are partitioned)."""
    zero3 = "zero3" in Path(compute.accelerate_config).name and compute.num_processes > 1
    return cfg.merged_sampling and cfg.engine == "trl" and not cfg.use_vllm and not zero3


def reference_of(trainer) -> str:
    """What the KL term (Eq. 4) regularises toward, read off the trainer itself."""
    if not getattr(trainer, "beta", 0):
        return "none (beta = 0)"
    if getattr(trainer, "ref_model", None) is not None:
        return "a separate reference model"
    model = trainer.accelerator.unwrap_model(trainer.model)
    if "ref" in getattr(model, "peft_config", {}):
        return "frozen copy of the starting adapter ('ref')"
    return f"the policy with its adapter disabled: {model.get_base_model().name_or_path}"


def train_grpo(model: ModelParams, cfg: GRPOParams, lora: LoRAParams, train_dataset, *,
               compute: ComputeParams,
               adapter: str | None, seed: int, run_dir: Path, out_dir: Path,
               merged_dir: Path | None = None, curves_dir: Path | None = None) -> list[dict]:  # fmt: skip
    """Run GRPO, resuming from ``run_dir``; save the adapter and the log history to ``out_dir``.
    An adapter trained on a merged SFT model says so in ``skinr1.json``, which evaluation reads."""
    trainer = build_trainer(model, cfg, lora, compute, train_dataset, adapter=adapter, seed=seed,
                            run_dir=run_dir, merged_dir=merged_dir)  # fmt: skip
    timer = attach_callbacks(trainer, curves_dir)
    trainer.train(resume_from_checkpoint=last_checkpoint(run_dir))
    merged = [adapter] if adapter and cfg.sft_init == "merge" else []
    record = run_record(trainer, timer, base=model.base, merged=merged,
                        reference=reference_of(trainer))  # fmt: skip
    save_adapter(trainer, out_dir, extra={RUN_FILE: record})
    return [h for h in trainer.state.log_history if "reward" in h]


def questions(P: Params):
    """The RL questions of the training splits (Appendix A), as TRL's dataset."""
    import random

    from skinr1.datasets.selection import load_configured, split_samples
    from skinr1.ddx import load_ddx
    from skinr1.mcq import build_question_set
    from skinr1.taxonomy import load_taxonomy

    tax = load_taxonomy()
    results = load_configured(P.data.root, P.data.rl_datasets, tax, seed=P.seed,
                              check_images=P.data.check_images)  # fmt: skip
    train = split_samples(results, "train")
    qs, report = build_question_set(train, "disease", tax, load_ddx(tax), P.seed,
                                    n_options=P.grpo.n_options,
                                    granularity_norm=P.grpo.granularity_norm)  # fmt: skip
    if P.data.max_train_questions:
        qs = random.Random(P.seed).sample(qs, min(P.data.max_train_questions, len(qs)))
    qs = with_deep_repeated(qs, tax, P.grpo.deep_question_repeat)
    return rl_dataset([q.to_row() for q in qs], P.model.prompt_style), report


def with_deep_repeated(questions: list, taxonomy, repeat: int) -> list:
    """``questions`` followed by ``repeat - 1`` more copies of those whose answer lies below a
    top-level category (``grpo.deep_question_repeat``, an ablation of the question mix: most of
    Appendix A's questions are answered by a category, and their updates dominate GRPO's)."""
    if repeat < 1:
        raise ValueError(f"grpo.deep_question_repeat = {repeat}: must be 1 or more")
    deep = [q for q in questions if len(taxonomy.path(q.options[q.answer])) >= 2]
    return questions + deep * (repeat - 1)


def run(P: Params, run: str) -> list[dict]:
    """Stage 04, one run (``sft_rl`` or ``rl_without_sft``), as notebook 04 and
    ``python -m skinr1 grpo --run ...`` run it."""
    from skinr1.launch import activate_engine

    if run not in RUNS:
        raise ValueError(f"run = {run!r}: one of {', '.join(RUNS)}")
    activate_engine(P.grpo.engine)
    adapter, out = (P.sft.out if run == "sft_rl" else None), P.grpo_adapter(run)
    if adapter and not (Path(adapter) / "adapter_config.json").exists():
        raise FileNotFoundError(f"sft.out = {adapter!r} holds no adapter; run the sft stage first")
    with state().main_process_first():
        ds, _ = questions(P)
    key = (P["model"], P["grpo"], P["lora"], P["compute"], P["data"], P.seed,
           ds._fingerprint, fingerprint(P.model.base), fingerprint(adapter),
           code_fingerprint("skinr1.grpo"))  # fmt: skip
    merged = checkpoint_dir(
        "sft-merged", P.model.base, fingerprint(P.model.base), fingerprint(adapter)
    )
    history = train_grpo(P.model, P.grpo, P.lora, ds, compute=P.compute, adapter=adapter,
                         seed=P.seed, run_dir=checkpoint_dir(f"grpo-{run}", *key), out_dir=out,
                         merged_dir=merged, curves_dir=curves_of(run))  # fmt: skip
    if state().is_main_process:
        model_card.write(P, run, out, data={
            "source": f"training splits of {', '.join(P.data.rl_datasets)} under `{P.data.root}`",
            "multiple-choice questions": len(ds), "options per question": P.grpo.n_options,
            "starts from": adapter or f"{P.model.base} (no SFT)",
            "dataset fingerprint": ds._fingerprint})  # fmt: skip
    return history


def curves_of(run: str) -> Path:
    """DVCLive's folder for one run (a DVC plots output of that run's stage)."""
    return Path("plots/grpo") / run


def main(argv: list[str] | None = None) -> int:
    """``python -m skinr1 grpo --params params.yaml --run sft_rl|rl_without_sft``."""
    import math

    from skinr1.launch import parse_stage_args

    P, args = parse_stage_args("grpo", argv, ("model", "data", "grpo", "compute", "sft"), RUNS)
    history = run(P, args.run)
    return 0 if history and all(math.isfinite(h["reward"]) for h in history) else 1
