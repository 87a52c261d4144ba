"""Stage 2: supervised fine-tuning on SkinRationale with TRL's SFTTrainer and a PEFT LoRA (Eq. 2)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from skinr1.config import (
    ComputeParams,
    ModelParams,
    Params,
    SFTParams,
    checkpoint_dir,
    fingerprint,
)
from skinr1.model import load_model, load_processor
from skinr1.provenance import code_fingerprint
from skinr1.training import (
    RUN_FILE,
    check_world,
    last_checkpoint,
    per_device,
    run_record,
    save_adapter,
    state,
    step_timer,
    trainer_args,
)

# The language model's linear layers and the vision-language merger, as the authors' code does;
# the ViT blocks stay frozen. A regex, because the vision MLPs share the names gate/up/down_proj.
LANGUAGE_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
DEFAULT_TARGETS = LANGUAGE_TARGETS + r"|.*visual\.merger\.mlp\.(0|2)"

STAGE = "sft"  # python -m skinr1 sft


def lora_config(r: int, alpha: int, dropout: float, target_modules=None, modules_to_save=None):
    from peft import LoraConfig

    targets = target_modules or DEFAULT_TARGETS
    if isinstance(targets, list) and len(targets) == 1:
        targets = targets[0]
    return LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
        modules_to_save=list(modules_to_save or []) or None, task_type="CAUSAL_LM",
    )  # fmt: skip


def apply_prompt_style(dataset, style: str, rationale: str = "full"):
    """Re-render each trajectory's prompt in ``style`` (compact: the RL answer tag too), and
    with ``rationale="findings"`` cut each completion to ``findings_only``.

    SkinRationale itself keeps Appendix D's text and the full rationale; both are properties of
    the model being trained, not of the data.
    """
    from skinr1.prompts import ANSWER_TAG, template, user_message

    if rationale not in ("full", "findings"):
        raise ValueError(f"sft.rationale = {rationale!r}: expected 'full' or 'findings'")
    if style == "paper" and rationale == "full":
        return dataset
    t1, t23 = template("sft_type1", style), template("sft_type23", style)

    def restyle(r):
        text = r["completion"][0]["content"][0]["text"]
        if rationale == "findings":
            text = findings_only(text)
        if style == "paper":
            return {
                "completion": [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
            }
        text = text.replace("<diagnosis>", f"<{ANSWER_TAG}>").replace(
            "</diagnosis>", f"</{ANSWER_TAG}>"
        )
        completion = [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
        return {
            "prompt": user_message(t1 if r["type"] == 1 else t23, style),
            "completion": completion,
        }

    return dataset.map(restyle)


_CONDITION = re.compile(r"classified as (benign|malignant|precancerous in situ)")


def findings_only(text: str) -> str:
    """A trajectory cut to its findings and its answer: the first sentence of ``<thinking>``
    (what the image shows) and the diagnosis with its lesion condition, e.g.
    ``<thinking>Dermoscopy ... shows a ...; waxy surface.</thinking> <final diagnosis>seborrheic
    keratosis, benign</final diagnosis>``. Tags are kept as they are."""
    m = re.search(r"<(diagnosis|final diagnosis)>(.*?)</\1>", text, re.S)
    think = re.search(r"<thinking>(.*?)</thinking>", text, re.S)
    if m is None or think is None:
        raise ValueError(f"not a trajectory with <thinking> and a diagnosis block: {text[:80]!r}")
    tag, answer = m.group(1), m.group(2).strip()
    findings = re.split(r"(?<=\.)\s", think.group(1).strip(), maxsplit=1)[0]
    name = re.split(r"[,.]", answer, maxsplit=1)[0].strip()
    cond = _CONDITION.search(answer)
    final = f"{name}, {cond.group(1)}" if cond else name
    return f"<thinking>{findings}</thinking> <{tag}>{final}</{tag}>"


def with_replay(
    dataset, rulebook, *, fraction: float, seed: int, image_size: int, prompt_style: str
):
    """Mix in ``fraction`` (of the result) of the base model's own warm-up examples.

    Replay keeps a small model's instruction-following (the <final diagnosis> answer format it
    learnt in warm-up) while SFT teaches diagnoses; a 7B instruct model keeps it unaided, so
    paper scale uses fraction 0. Replay rows name no diagnosis and carry type 0.
    """
    import datasets

    from skinr1.model import warmup_examples

    if fraction <= 0:
        return dataset
    if not fraction < 1:
        raise ValueError(f"sft.replay_fraction = {fraction}: must be in [0, 1)")
    n = round(len(dataset) * fraction / (1 - fraction))
    rows = warmup_examples(rulebook, n, seed + 1, image_size=image_size, prompt_style=prompt_style)
    extra = {
        c: [None] * n for c in dataset.column_names if c not in ("prompt", "completion", "images")
    }
    extra.update(type=[0] * n, id=[f"replay-{i}" for i in range(n)])
    replay = datasets.Dataset.from_dict(
        {"prompt": [r["prompt"] for r in rows], "completion": [r["completion"] for r in rows],
         "images": [r["images"] for r in rows], **extra}, features=dataset.features,
    )  # fmt: skip
    return datasets.concatenate_datasets([dataset, replay]).shuffle(seed=seed)


def train_sft(model: ModelParams, cfg: SFTParams, train_dataset, *, compute: ComputeParams,
              seed: int, run_dir: Path, out_dir: Path, rulebook=None) -> list[dict]:  # fmt: skip
    """Train the LoRA, resuming from ``run_dir``'s last checkpoint; save the adapter to out_dir.

    ``train_dataset`` is in TRL's conversational prompt/completion format with an ``images``
    column, so the loss covers the completion tokens only (Eq. 2 over x_1..x_n given I and p).
    Runs in one process or under ``accelerate launch``; ``sft.batch_size`` is the effective batch.
    """
    from trl import SFTConfig, SFTTrainer

    types = set(cfg.trajectory_types)
    if not types or not types <= {1, 2, 3}:
        raise ValueError(
            f"sft.trajectory_types = {cfg.trajectory_types}: a non-empty subset of [1, 2, 3]"
        )
    world = check_world(compute)
    # The config comes before the model: under ZeRO-3 it is what partitions the weights at load.
    args = SFTConfig(
        **trainer_args(cfg, model, compute, run_dir=run_dir, seed=seed,
                       per_device_batch=per_device(cfg.batch_size, cfg.grad_accum, world,
                                                   "sft.batch_size")),
        max_length=None,
    )  # fmt: skip
    processor = load_processor(model.base, max_pixels=model.max_pixels, min_pixels=model.min_pixels,
                               trust_remote_code=model.trust_remote_code)  # fmt: skip
    base = load_model(model.base, dtype=model.dtype, trust_remote_code=model.trust_remote_code,
                      attn_implementation=model.attn_implementation)  # fmt: skip
    if types != {1, 2, 3}:
        train_dataset = train_dataset.filter(lambda r: r["type"] in types)
    train_dataset = apply_prompt_style(train_dataset, model.prompt_style, cfg.rationale)
    if cfg.replay_fraction > 0:
        if rulebook is None:
            raise ValueError(
                "sft.replay_fraction > 0 needs the rule book (train_sft(rulebook=...))"
            )
        side = int(model.max_pixels**0.5)
        train_dataset = with_replay(train_dataset, rulebook, fraction=cfg.replay_fraction,
                                    seed=seed, image_size=side, prompt_style=model.prompt_style)  # fmt: skip
    trainer = SFTTrainer(
        model=base, args=args, train_dataset=train_dataset, processing_class=processor,
        peft_config=lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules,
                                cfg.modules_to_save),
    )  # fmt: skip
    timer = step_timer()
    trainer.add_callback(timer)
    trainer.train(resume_from_checkpoint=last_checkpoint(run_dir))
    save_adapter(
        trainer, out_dir, {RUN_FILE: run_record(trainer, timer, base=model.base, merged=[])}
    )
    return [h for h in trainer.state.log_history if "loss" in h]


def run(P: Params) -> list[dict]:
    """Stage 03 as notebook 03 and ``python -m skinr1 sft`` run it: SkinRationale from
    ``trajectories.out``, checkpoints keyed by everything that shapes the run, the adapter to
    ``sft.out`` and the loss curve to ``plots/sft_loss.csv``."""
    from datasets import load_from_disk

    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy

    src = Path(P.trajectories.out) / "dataset"
    if not src.is_dir():
        raise FileNotFoundError(
            f"trajectories.out = {P.trajectories.out!r} holds no dataset/; run "
            "`dvc repro trajectories` (notebook 02) first"
        )
    ds = load_from_disk(str(src), keep_in_memory=True)  # no cache files in a DVC output
    run_dir = checkpoint_dir("sft", P["model"], P["sft"], P["compute"], P.seed,
                             ds._fingerprint, fingerprint(P.model.base),
                             code_fingerprint("skinr1.sft"))  # fmt: skip
    history = train_sft(P.model, P.sft, ds, compute=P.compute, seed=P.seed, run_dir=run_dir,
                        out_dir=Path(P.sft.out), rulebook=load_rules(load_taxonomy()))  # fmt: skip
    if state().is_main_process:
        Path("plots").mkdir(exist_ok=True)
        lines = ["step,loss", *(f"{h['step']},{h['loss']}" for h in history)]
        Path("plots/sft_loss.csv").write_text("\n".join(lines) + "\n")
    return history


def main(argv: list[str] | None = None) -> int:
    """``python -m skinr1 sft --params params.yaml`` (also under ``accelerate launch``)."""
    from skinr1.launch import parse_stage_args

    P, _ = parse_stage_args("sft", argv, ("model", "sft", "compute", "trajectories"))
    history = run(P)
    return 0 if history and all(math.isfinite(h["loss"]) for h in history) else 1
