"""GRPO with R_consistency against the committed run: its effect on faithfulness and accuracy.

    python tools/consistency_ablation.py            # run the experiment, then the comparison
    python tools/consistency_ablation.py --collect  # the comparison of an experiment already run

The experiment is ``dvc exp run --temp`` of HEAD with ``grpo.rewards`` plus ``consistency``
(named ``consistency``), so only the GRPO runs and the evaluation rerun and the workspace keeps
its outputs. Its answers are read from the DVC cache through the experiment's dvc.lock, and
compared with the workspace's ``data/eval_records.jsonl`` question by question
(``skinr1.trust.compare_runs``). ``metrics/consistency_ablation.json`` gets the result; the
table printed is the one docs/trust.md shows.
"""

from __future__ import annotations

import json

from dvc_experiment import (
    ROOT,
    ablation_args,
    experiment_records,
    run_experiment,
    workspace_records,
)

NAME = "consistency"


def _cell(d: dict) -> str:
    return f"{d['value']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] (n = {d['n']})"


def main(argv: list[str] | None = None) -> int:
    P, collect = ablation_args(__doc__, argv)
    from skinr1.evaluation import MODEL_LABELS
    from skinr1.rules import load_rules, load_vocabulary
    from skinr1.taxonomy import load_taxonomy
    from skinr1.trust import TrustKnowledge, compare_runs

    if NAME in P.grpo.rewards:
        raise SystemExit(f"params.yaml's grpo.rewards already has {NAME}: nothing to compare with")
    override = "grpo.rewards=[" + ",".join([*P.grpo.rewards, NAME]) + "]"
    if not collect:
        run_experiment(NAME, override)
    with_c = experiment_records(NAME, "python tools/consistency_ablation.py", [override])
    without = workspace_records()
    tax = load_taxonomy()
    kb = TrustKnowledge(tax, load_rules(tax), load_vocabulary(), P.evaluation.feature_truth)
    out = {"seed": P.seed, "rewards": [*P.grpo.rewards, NAME], "models": {}}
    print("| model | accuracy | stated-feature precision | recall | supports its answer |")
    print("|---|---|---|---|---|")
    for model in [m for m in P.grpo_runs if m in {r["model"] for r in with_c}]:
        d = compare_runs(with_c, without, kb, model=model, seed=P.seed)
        out["models"][model] = d
        print(f"| {MODEL_LABELS.get(model, model)} | "
              + " | ".join(_cell(d[k]) for k in ("accuracy", "precision", "recall", "supports"))
              + " |")  # fmt: skip
    (ROOT / "metrics" / "consistency_ablation.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
