"""Stage 2: supervised fine-tuning on SkinRationale with TRL's SFTTrainer and a PEFT LoRA (Eq. 2)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from skinr1 import model_card
from skinr1.config import (
    ComputeParams,
    LoRAParams,
    ModelParams,
    Params,
    SFTParams,
    checkpoint_dir,
    fingerprint,
)
from skinr1.model import REPLAY_DIR, load_model, load_processor
from skinr1.provenance import code_fingerprint
from skinr1.taxonomy import load_taxonomy
from skinr1.training import (
    RUN_FILE,
    attach_callbacks,
    check_world,
    last_checkpoint,
    lora_config,
    per_device,
    run_record,
    save_adapter,
    score_labelled_tokens_only,
    state,
    trainer_args,
)

STAGE = "sft"  # python -m skinr1 sft
CURVES = Path("plots/sft")  # DVCLive's folder for this stage (a DVC plots output)


RATIONALES = ("full", "compact", "findings")


def apply_prompt_style(dataset, style: str, rationale: str = "full"):
    """Re-render each trajectory's prompt in ``style`` (compact: the RL answer tag too), and
    choose its completion: ``full`` (Appendix B's text), ``compact`` (the same parts in the
    trajectory's compact format, ``trajectories.compact_response``) or ``findings`` (the
    ablation that cuts it to ``findings_only``: no rule, no hierarchy, no differential).

    SkinRationale itself keeps Appendix D's text and both rationale formats; which one is
    trained on is a property of the model being trained, not of the data.
    """
    from skinr1.prompts import ANSWER_TAG, template, user_message

    if rationale not in RATIONALES:
        raise ValueError(f"sft.rationale = {rationale!r}: expected one of {RATIONALES}")
    if style == "paper" and rationale == "full":
        return dataset
    if rationale == "compact" and "compact" not in dataset.column_names:
        raise ValueError(
            "sft.rationale = 'compact', but this SkinRationale has no compact column (written "
            "before it existed); rerun `dvc repro trajectories`"
        )
    t1, t23 = template("sft_type1", style), template("sft_type23", style)

    def restyle(r):
        text = r["completion"][0]["content"][0]["text"]
        if rationale == "findings":
            text = findings_only(text)
        elif rationale == "compact":
            text = r["compact"]
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


_ANSWER_BLOCK = re.compile(r"<(diagnosis|final diagnosis)>(.*?)</\1>", re.S)


def with_options(dataset, taxonomy, *, share: float, n_options: int, seed: int, style: str,
                 trees: Sequence[str], hide_label: float = 0.0):  # fmt: skip
    """Show ``share`` of the trajectories (every type alike) as the evaluation asks: the same
    image and reasoning, the prompt the disease question's (Type 1) or the OOD question's
    (Types 2-3) with ``n_options`` options, the answer the finest offered option on the
    diagnosis's path, with its lesion condition. Distractors come from the label trees of the
    datasets ``trees`` names (the RL datasets: the OOD set's labels stay unseen as options).

    The options are Appendix A's disease question for the trajectory's diagnosis
    (``mcq.disease_question``: 1-3 of its path, distractors from a dataset tree holding it), so a
    textbook case of a subtype is answered with the ancestor the question offers. The thinking
    is kept: it reasons to the finest diagnosis, and its hierarchical completion ("a subtype of
    ...") names the offered one. With probability ``hide_label``, a subtype's trajectory is asked
    the question of one of its ancestors instead (the label and everything under it off the
    list), and answered with that ancestor. A 7B instruct model reads options unaided; the tiny model, whose
    SFT data otherwise never shows one, learns to name diagnoses nobody offered (paper: 0;
    docs/deviations.md).
    """
    import random
    from types import SimpleNamespace

    from skinr1.mcq import disease_question, sample_rng
    from skinr1.prompts import ANSWER_TAG, template, user_message

    if not 0.0 <= share < 1.0:
        raise ValueError(f"sft.mcq_share = {share}: must be in [0, 1)")
    if share == 0:
        return dataset
    if not trees:
        raise ValueError(
            f"sft.mcq_share = {share} draws distractors from the RL datasets' label trees, but "
            "none were given (data.rl_datasets); pass them, or set sft.mcq_share: 0"
        )
    chosen = set(random.Random(seed).sample(range(len(dataset)), round(len(dataset) * share)))
    trees = {ds: set(taxonomy.dataset_nodes(ds)) for ds in trees}

    def ask(r, i):
        if i not in chosen:
            return {}
        node = r["final"]
        if node not in taxonomy:
            raise ValueError(
                f"trajectory {r['id']!r}: final diagnosis {node!r} is not in the taxonomy; "
                "rerun `dvc repro trajectories`"
            )
        rng = sample_rng(seed, r["id"])
        holding = [ds for ds, tree in trees.items() if node in tree]
        dataset_name = rng.choice(holding) if holding else ""
        ancestors = taxonomy.ancestors(node)
        if ancestors and rng.random() < hide_label:
            # the question of an ancestor: the label and everything under it are off the list
            node = rng.choice(ancestors)
        case = SimpleNamespace(
            id=r["id"], image=r["id"], node=node, path=taxonomy.path(node),
            malignancy=taxonomy.malignancy(node), dataset=dataset_name,
        )  # fmt: skip
        q = disease_question(case, taxonomy, rng, n_options=n_options)
        text = r["completion"][0]["content"][0]["text"]
        final = (
            f"<{ANSWER_TAG}>{q.answer_text}, {taxonomy.malignancy(q.answer_text)}</{ANSWER_TAG}>"
        )
        text, n = _ANSWER_BLOCK.subn(final, text)
        if n != 1:
            raise ValueError(f"trajectory {r['id']!r}: expected one diagnosis block, found {n}")
        prompt = template("diagnosis" if r["type"] == 1 else "ood", style).format(
            question=q.question, letters="/".join(q.letters)
        )  # fmt: skip
        return {
            "prompt": user_message(prompt, style),
            "completion": [{"role": "assistant", "content": [{"type": "text", "text": text}]}],
        }

    return dataset.map(ask, with_indices=True)


def with_replay(dataset, base: str, *, fraction: float, seed: int):
    """Mix in ``fraction`` (of the result) of the base model's own pre-training examples, drawn
    from ``<base>/warmup_data``.

    Replay keeps a small model's instruction-following (the <final diagnosis> answer format it
    learnt in warm-up) while SFT teaches diagnoses; a 7B instruct model keeps it unaided, so
    paper scale uses fraction 0. Replay rows name no diagnosis and carry type 0.
    """
    import datasets

    if fraction <= 0:
        return dataset
    if not fraction < 1:
        raise ValueError(f"sft.replay_fraction = {fraction}: must be in [0, 1)")
    src = Path(base) / REPLAY_DIR
    if not src.is_dir():
        raise FileNotFoundError(
            f"sft.replay_fraction = {fraction} replays the base model's pre-training examples, "
            f"but model.base = {base!r} has no {REPLAY_DIR}/ (only the embedded tiny model "
            "ships one); set sft.replay_fraction: 0"
        )
    pool = datasets.load_from_disk(str(src), keep_in_memory=True)
    n = round(len(dataset) * fraction / (1 - fraction))
    if n > len(pool):
        raise ValueError(
            f"sft.replay_fraction = {fraction} needs {n} replay rows, but {src} holds "
            f"{len(pool)}; lower the fraction or raise base_model.warmup_examples"
        )
    rows = pool.shuffle(seed=seed).select(range(n))
    extra = {
        c: [None] * n for c in dataset.column_names if c not in ("prompt", "completion", "images")
    }
    extra.update(type=[0] * n, id=[f"replay-{i}" for i in range(n)])
    replay = datasets.Dataset.from_dict(
        {"prompt": rows["prompt"], "completion": rows["completion"], "images": rows["images"],
         **extra}, features=dataset.features,
    )  # fmt: skip
    return datasets.concatenate_datasets([dataset, replay]).shuffle(seed=seed)


def train_sft(model: ModelParams, cfg: SFTParams, lora: LoRAParams, train_dataset, *,
              compute: ComputeParams, seed: int, run_dir: Path, out_dir: Path,
              curves_dir: Path | None = None, mcq_trees: Sequence[str] = ()) -> list[dict]:  # fmt: skip
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
    train_dataset = with_options(train_dataset, load_taxonomy(), share=cfg.mcq_share,
                                 hide_label=cfg.mcq_hide_label,
                                 n_options=cfg.mcq_options, seed=seed, style=model.prompt_style,
                                 trees=mcq_trees)  # fmt: skip
    train_dataset = with_replay(train_dataset, model.base, fraction=cfg.replay_fraction, seed=seed)
    score_labelled_tokens_only()
    trainer = SFTTrainer(
        model=base, args=args, train_dataset=train_dataset, processing_class=processor,
        peft_config=lora_config(lora),
    )  # fmt: skip
    timer = attach_callbacks(trainer, curves_dir)
    trainer.train(resume_from_checkpoint=last_checkpoint(run_dir))
    save_adapter(
        trainer, out_dir, {RUN_FILE: run_record(trainer, timer, base=model.base, merged=[])}
    )
    return [h for h in trainer.state.log_history if "loss" in h]


def run(P: Params) -> list[dict]:
    """Stage 03 as notebook 03 and ``python -m skinr1 sft`` run it: SkinRationale from
    ``trajectories.out``, checkpoints keyed by everything that shapes the run, the adapter to
    ``sft.out`` and its DVCLive curves to ``plots/sft``."""
    from datasets import load_from_disk

    src = Path(P.trajectories.out) / "dataset"
    if not src.is_dir():
        raise FileNotFoundError(
            f"trajectories.out = {P.trajectories.out!r} holds no dataset/; run "
            "`dvc repro trajectories` (notebook 02) first"
        )
    ds = load_from_disk(str(src), keep_in_memory=True)  # no cache files in a DVC output
    run_dir = checkpoint_dir("sft", P["model"], P["sft"], P["lora"], P["compute"], P.seed,
                             P.data.rl_datasets, ds._fingerprint, fingerprint(P.model.base),
                             code_fingerprint("skinr1.sft"))  # fmt: skip
    history = train_sft(P.model, P.sft, P.lora, ds, compute=P.compute, seed=P.seed,
                        run_dir=run_dir, out_dir=Path(P.sft.out), curves_dir=CURVES,
                        mcq_trees=P.data.rl_datasets)  # fmt: skip
    if state().is_main_process:
        model_card.write(P, "sft", P.sft.out, data={
            "source": f"SkinRationale, `{src}`", "trajectories": len(ds),
            "trajectory types trained": P.sft.trajectory_types,
            "replayed warm-up share": P.sft.replay_fraction,
            "share shown with options": P.sft.mcq_share,
            "dataset fingerprint": ds._fingerprint})  # fmt: skip
    return history


def main(argv: list[str] | None = None) -> int:
    """``python -m skinr1 sft --params params.yaml`` (also under ``accelerate launch``)."""
    from skinr1.launch import parse_stage_args

    P, _ = parse_stage_args("sft", argv, ("model", "sft", "compute", "trajectories", "data"))
    history = run(P)
    return 0 if history and all(math.isfinite(h["loss"]) for h in history) else 1
