"""A quick trial of one GRPO change: Skin-R1's GRPO run again from the workspace's SFT adapter with
the change, answered on the comparison sets and paired with the workspace's own SFT and Skin-R1
answers, question by question. A trial, not a committed result: one seed, one machine, no DVC.

    python tools/grpo_trial.py beta04 --set grpo.beta=0.4
    python tools/grpo_trial.py head --freeze-saved-modules   # LM head and embeddings frozen
    python tools/grpo_trial.py deep --deep-only              # GRPO on the deeper questions alone
    python tools/grpo_trial.py --table                       # every trial's summary (README)

``--set`` takes params.yaml keys as ``dvc exp run -S`` does (repeatable). ``--freeze-saved-modules``
trains the LoRA alone in GRPO: the fully trained ``lora.modules_to_save`` (the tiny model's LM head
and embeddings) keep SFT's weights. ``--deep-only`` trains on the questions answered below a
top-level category alone (the same steps, so more passes over fewer questions).

The run resumes from ``data/trials/<name>/run``; its adapter goes to ``data/trials/<name>/adapter``,
its answers to ``records.jsonl`` beside it (a second call with the same change answers again,
without training; another change under the same name is refused); ``metrics/trials/<name>.json``
gets the comparison and the table printed. The workspace's answers (``data/eval_records.jsonl``) must come from this
machine's ``dvc repro`` of the same params.yaml: floating-point code paths differ between
processors, and so do the trained weights (README, "The committed configuration on another CPU").
A trial takes about 5 minutes on 2 cores, against ~12 for a ``dvc exp run`` of the GRPO stages.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
from collections.abc import Iterator
from pathlib import Path

import yaml
from dvc_experiment import ROOT, SLICES, answers, with_overrides, workspace_records

RUN = "sft_rl"
AGAINST = ("sft", "sft_rl")  # the model the trial starts from, and the run it changes


def compare(trial: list[dict], workspace: list[dict], *, seed: int) -> dict:
    """Per slice: accuracy [95% CI] of SFT, Skin-R1 and the trial, and the trial's paired
    differences from each (stratified by dataset)."""
    from skinr1.intervals import accuracy_ci, paired_difference

    out = {}
    for label, (kind, depths) in SLICES.items():
        models = {m: answers(workspace, m, kind, depths) for m in AGAINST}
        models["trial"] = answers(trial, RUN, kind, depths)
        ids = sorted(models["sft_rl"])
        if not ids:
            continue
        if any(sorted(a) != ids for a in models.values()):
            raise SystemExit(f"{label}: the trial and the workspace answered different questions")
        ds = [models["sft_rl"][i]["dataset"] for i in ids]
        right = {m: [a[i]["correct"] for i in ids] for m, a in models.items()}
        row = {m: accuracy_ci(v, ds, seed=seed)["pooled"] for m, v in right.items()}
        for m in AGAINST:
            row[f"trial - {m}"] = paired_difference(right["trial"], right[m], ds, seed=seed)
        row["sft_rl - sft"] = paired_difference(right["sft_rl"], right["sft"], ds, seed=seed)
        out[label] = row
    return out


def _acc(d: dict) -> str:
    return f"{d['value']:.3f} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]"


def _diff(d: dict) -> str:
    return f"{d['value']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"


def render(result: dict) -> str:
    lines = [f"| questions (n) | SFT | Skin-R1 | trial: {result['change']} | trial - SFT "
             "| trial - Skin-R1 |", "|---|---|---|---|---|---|"]  # fmt: skip
    for label, r in result["slices"].items():
        cells = [_acc(r[m]) for m in (*AGAINST, "trial")]
        cells += [_diff(r[f"trial - {m}"]) for m in AGAINST]
        lines.append(f"| {label} ({r['trial']['n']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


SUMMARY = ("disease", "disease, depth 1", "disease, depths 2-3", "hierarchical")


def render_all(results: list[dict]) -> str:
    """One row per trial: its differences from SFT on the summary slices, and from Skin-R1 on
    the disease set (the README's table of trials); the first row is Skin-R1's own. The trials
    must share one workspace run (the same SFT and Skin-R1 answers)."""
    if len({json.dumps(r["slices"]["disease"]["sft_rl"]) for r in results}) > 1:
        raise SystemExit("the trials were compared with different workspace runs")
    first = results[0]["slices"]
    head = " | ".join(f"{s} - SFT (n={first[s]['trial']['n']})" for s in SUMMARY)
    lines = [f"| trial (GRPO from SFT) | {head} | disease - Skin-R1 |",
             "|---|" + "---|" * (len(SUMMARY) + 1)]  # fmt: skip
    unchanged = [_diff(first[s]["sft_rl - sft"]) for s in SUMMARY]
    lines.append("| none (Skin-R1 of the same `dvc repro`) | " + " | ".join(unchanged) + " | |")
    for r in results:
        cells = [_diff(r["slices"][s]["trial - sft"]) for s in SUMMARY]
        cells.append(_diff(r["slices"]["disease"]["trial - sft_rl"]))
        lines.append(f"| {r['change']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def committed_trials() -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted((ROOT / "metrics" / "trials").glob("*.json"))]


def cpu() -> str:
    """The processor's name (trained weights differ between processors)."""
    info = Path("/proc/cpuinfo")
    names = [ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines()
             if ln.startswith("model name")] if info.exists() else []  # fmt: skip
    return names[0] if names else platform.processor() or platform.machine()


def describe(overrides: list[str], freeze: bool, deep_only: bool = False) -> str:
    parts = [*overrides, *(["LM head and embeddings frozen"] if freeze else []),
             *(["deeper questions only"] if deep_only else [])]  # fmt: skip
    if not parts:
        raise SystemExit(
            "a trial needs a change: --set key=value, --freeze-saved-modules or --deep-only"
        )
    return ", ".join(parts)


@contextlib.contextmanager
def saved_modules_frozen(enabled: bool) -> Iterator[None]:
    """While active, every GRPO trainer skinr1.grpo builds trains its LoRA matrices alone: the
    parameters of PEFT's ``modules_to_save`` copies stop requiring gradients before the
    optimiser is created (at ``train()``), so it never sees them."""
    import skinr1.grpo as grpo

    build = grpo.build_trainer

    def frozen(*args, **kwargs):
        trainer = build(*args, **kwargs)
        names = [n for n, p in trainer.model.named_parameters()
                 if "modules_to_save" in n and p.requires_grad]  # fmt: skip
        if not names:
            raise SystemExit("--freeze-saved-modules: the policy has no trained modules_to_save")
        for n, p in trainer.model.named_parameters():
            if n in names:
                p.requires_grad_(False)
        return trainer

    if enabled:
        grpo.build_trainer = frozen
    try:
        yield
    finally:
        grpo.build_trainer = build


def deeper_only(dataset):
    """The RL questions whose answer lies below a top-level category (the 81 of 407 that can
    teach a subtype), each as often as in the full set."""
    from skinr1.taxonomy import load_taxonomy

    tax = load_taxonomy()

    def deep(r: dict) -> bool:
        return len(tax.path(r["options"][r["letters"].index(r["answer"])])) >= 2

    out = dataset.filter(deep)
    if not len(out):
        raise SystemExit("--deep-only: no RL question is answered below a top-level category")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    ap.add_argument(
        "name",
        nargs="?",
        help="the trial's folder under data/trials and metrics/trials",
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a params.yaml override, e.g. grpo.beta=0.4 (repeatable)")  # fmt: skip
    ap.add_argument("--freeze-saved-modules", action="store_true",
                    help="GRPO trains the LoRA only (lora.modules_to_save keep SFT's weights)")  # fmt: skip
    ap.add_argument("--deep-only", action="store_true",
                    help="GRPO on the questions answered below a top-level category alone")  # fmt: skip
    ap.add_argument("--table", action="store_true",
                    help="print the table of every trial in metrics/trials/ and stop")  # fmt: skip
    args = ap.parse_args(argv)
    if args.table:
        print(render_all(committed_trials()))
        return 0
    if not args.name:
        ap.error("a trial needs a name (or --table)")
    change = describe(args.set, args.freeze_saved_modules, args.deep_only)
    bad = [o for o in args.set if not o.startswith("grpo.")]
    if bad:
        raise SystemExit(f"{bad}: a trial changes GRPO only (grpo.*); use dvc exp run for others")

    from skinr1 import grpo
    from skinr1.config import load_params
    from skinr1.evaluation import answer_questions, load_eval_model, question_sets
    from skinr1.model import load_processor

    workspace = workspace_records()  # first: no trial without the answers it is compared with
    folder = ROOT / "data" / "trials" / args.name
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "change.txt"
    if stamp.exists() and stamp.read_text() != change:
        raise SystemExit(f"{folder} holds the trial {stamp.read_text()!r}, not {change!r}: "
                         "choose another name, or delete the folder to run it again")  # fmt: skip
    stamp.write_text(change)
    params = with_overrides(yaml.safe_load((ROOT / "params.yaml").read_text()), args.set)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    P = load_params(folder / "params.yaml")
    adapter = folder / "adapter"
    if not (adapter / "adapter_config.json").exists():
        ds, _ = grpo.questions(P)
        if args.deep_only:
            ds = deeper_only(ds)
        with saved_modules_frozen(args.freeze_saved_modules):
            grpo.train_grpo(P.model, P.grpo, P.lora, ds, compute=P.compute, adapter=P.sft.out,
                            seed=P.seed, run_dir=folder / "run", out_dir=adapter)  # fmt: skip
    sets = question_sets(P)
    processor = load_processor(P.model.base, max_pixels=P.model.max_pixels,
                               min_pixels=P.model.min_pixels,
                               trust_remote_code=P.model.trust_remote_code)  # fmt: skip
    model = load_eval_model(P.model, str(adapter))
    trial = []
    for kind in dict.fromkeys(k for k, _ in SLICES.values()):
        rows = answer_questions(model, processor, sets[kind], batch_size=P.evaluation.batch_size,
                                max_new_tokens=P.evaluation.max_new_tokens,
                                prompt_style=P.model.prompt_style, desc=f"trial/{kind}")  # fmt: skip
        trial += [{"model": RUN, "set": kind, **r} for r in rows]
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in trial))
    result = {"name": args.name, "change": change, "seed": P.seed,
              "machine": cpu(),
              "slices": compare(trial, workspace, seed=P.seed)}  # fmt: skip
    out = ROOT / "metrics" / "trials" / f"{args.name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
