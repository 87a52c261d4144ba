"""GRPO with R_gran paying only the finest offered option, against the committed run (the paper's
R_gran): does partial credit for a parent explain why GRPO drops SFT's subtypes?

    python tools/granularity_ablation.py            # run the experiment, then the comparison
    python tools/granularity_ablation.py --collect  # the comparison of an experiment already run

The experiment is ``dvc exp run --temp`` of HEAD with ``grpo.granularity_norm=finest`` (named
``finest``): a coarser option on the path earns 0 instead of 0.75 x its share of the answer's
depth, so R_gran becomes an accuracy reward. Only the GRPO runs and the evaluation rerun; the
workspace keeps its outputs. Each GRPO run is compared with the model it starts from and with
the committed run of the same name, question by question, on the disease set (all, depth 1,
depths 2-3) and the hierarchical set. ``metrics/granularity_ablation.json`` gets the result;
the table printed is the one the README shows.
"""

from __future__ import annotations

import json

from dvc_experiment import (
    ROOT,
    SLICES,
    ablation_args,
    answers,
    experiment_records,
    run_experiment,
    workspace_records,
)

NORM = "finest"  # also the experiment's name
START = {"sft_rl": "sft", "rl_without_sft": "base"}  # the model each GRPO run starts from


def compare(ablation: list[dict], committed: list[dict], run: str, *, seed: int) -> dict:
    """Per slice: accuracy [95% CI] of the start, the committed run and the ablation, and the
    paired differences between them (stratified by dataset)."""
    from skinr1.intervals import accuracy_ci, paired_difference

    out = {}
    for label, (kind, depths) in SLICES.items():
        models = {"start": answers(committed, START[run], kind, depths),
                  "paper": answers(committed, run, kind, depths),
                  "finest": answers(ablation, run, kind, depths)}  # fmt: skip
        ids = sorted(models["paper"])
        if sorted(models["finest"]) != ids or sorted(models["start"]) != ids:
            raise SystemExit(f"{run}, {label}: the runs answered different questions")
        if not ids:  # a set this run's evaluation leaves out
            continue
        ds = [models["paper"][i]["dataset"] for i in ids]
        right = {m: [a[i]["correct"] for i in ids] for m, a in models.items()}
        row = {m: accuracy_ci(v, ds, seed=seed)["pooled"] for m, v in right.items()}
        for a, b in (("paper", "start"), ("finest", "start"), ("finest", "paper")):
            row[f"{a} - {b}"] = paired_difference(right[a], right[b], ds, seed=seed)
        out[label] = row
    return out


def _acc(d: dict) -> str:
    return f"{d['value']:.3f} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]"


def _diff(d: dict) -> str:
    return f"{d['value']:+.3f} [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]"


def render(result: dict) -> str:
    from skinr1.evaluation import MODEL_LABELS

    lines = ["| GRPO run | questions (n) | starts from | paper's R_gran | finest only | "
             "paper's - start | finest - start | finest - paper's |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for run, rows in result["runs"].items():
        for label, r in rows.items():
            cells = [_acc(r[m]) for m in ("start", "paper", "finest")]
            cells += [_diff(r[k]) for k in ("paper - start", "finest - start", "finest - paper")]
            head = f"| {MODEL_LABELS.get(run, run)} | {label} ({r['paper']['n']}) | "
            lines.append(head + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    P, collect = ablation_args(__doc__, argv)
    if P.grpo.granularity_norm == NORM:
        raise SystemExit(
            f"params.yaml's grpo.granularity_norm is already {NORM}: nothing to compare"
        )
    override = f"grpo.granularity_norm={NORM}"
    if not collect:
        run_experiment(NORM, override)
    ablation, committed = (
        experiment_records(NORM, "python tools/granularity_ablation.py", [override]),
        workspace_records(),
    )
    runs = [r for r in P.grpo_runs if r in {x["model"] for x in ablation}]
    result = {"seed": P.seed, "committed": P.grpo.granularity_norm, "ablation": NORM,
              "runs": {r: compare(ablation, committed, r, seed=P.seed) for r in runs}}  # fmt: skip
    (ROOT / "metrics" / "granularity_ablation.json").write_text(json.dumps(result, indent=1))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
