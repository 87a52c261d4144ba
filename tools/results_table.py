"""The README's results tables, rendered from ``metrics/metrics.json`` and ``metrics/claims.json``
(notebook 05's outputs): accuracies with their 95% intervals, and the paper's orderings tested.

python tools/results_table.py            # print both tables
python tools/results_table.py --check    # exit 1 if README.md does not hold them verbatim
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from skinr1.evaluation import verdict

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "base": "Base (tiny, warmed up)",
    "sft": "SFT",
    "rl_without_sft": "RL without SFT",
    "sft_rl": "Skin-R1 (SFT + RL)",
}
# (column header, question set, key in the set's "ci"): pooled accuracy over the set's questions,
# which is the paper's "Avg." (weighted by test size), with its 95% stratified-bootstrap interval.
COLUMNS = [
    ("disease acc", "disease", "acc"),
    ("invalid (disease)", "disease", "invalid_rate"),
    ("lesion acc", "lesion", "acc"),
    ("DDx acc", "ddx", "acc"),
    ("hierarchical acc", "hierarchical", "acc"),
    ("OOD acc", "ood", "acc"),
]


def _cell(ci: dict) -> str:
    return f"{ci['value']:.3f} [{ci['ci_low']:.2f}, {ci['ci_high']:.2f}]"


def render(metrics: dict) -> str:
    """Rows = models, columns = sets (n in the header): value [95% interval]; lesion macro-F1
    (weighted by test size) has no interval and is the last column. The first row is each
    set's chance level."""
    some = {s: next(iter(metrics[s].values()))["ci"]["acc"]["n"] for _, s, _ in COLUMNS}
    lines = [
        "| model | "
        + " | ".join(f"{h} (n={some[s]})" for h, s, _ in COLUMNS)
        + " | lesion macro-F1 |",
        "|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    chance = [f"{next(iter(metrics[s].values()))['chance']:.3f}" if k == "acc" else ""
              for _, s, k in COLUMNS]  # fmt: skip
    lines.append("| chance (uniform over the offered options) | " + " | ".join(chance) + " | |")
    for key, name in MODELS.items():
        if key not in metrics["disease"]:
            continue
        cells = [_cell(metrics[s][key]["ci"][k]) for _, s, k in COLUMNS]
        cells.append(f"{metrics['lesion'][key]['wavg_f1']:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_claims(claims: list[dict]) -> str:
    """One row per ordering the paper reports: difference [95% CI], McNemar p, n, verdict."""
    lines = [
        "| claim (set) | difference [95% CI] | p (McNemar) | n | holds |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        if c["diff"] is None:
            lines.append(f"| {c['claim']} ({c['set']}) | | | 0 | no: {c['note']} |")
            continue
        p = "" if c["p_value"] is None else f"{c['p_value']:.2g}"
        diff = f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"
        shown = {"holds": "yes", "no difference": "no difference",
                 "opposite": "no: the opposite"}[verdict(c)]  # fmt: skip
        lines.append(f"| {c['claim']} ({c['set']}) | {diff} | {p} | {c['n']} | {shown} |")
    return "\n".join(lines)


def _trust_cell(ci: dict | None) -> str:
    if not ci or not ci.get("n") or ci["value"] != ci["value"]:
        return "not scored"
    return f"{ci['value']:.3f} [{ci['ci_low']:.2f}, {ci['ci_high']:.2f}]"


def render_trust(trust: dict) -> str:
    """Per model (disease set; missed malignancy on the lesion set): the trust metrics of
    ``metrics/trust.json`` with their 95% intervals, n in the header."""
    disease, lesion = trust["sets"]["disease"], trust["sets"].get("lesion", {})
    some = next(iter(disease.values()))
    n_dis = some["n"]
    n_risky = next(iter(lesion.values()))["missed_malignancy"]["n"] if lesion else 0
    lines = [
        f"| model | stated-feature precision (n={n_dis}) | recall | supports its answer | ECE | "
        f"AURC | coverage at 90% accuracy (threshold) | malignant called benign, lesion set "
        f"(n={n_risky}) | skin-type gap (best - worst) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, name in MODELS.items():
        if key not in disease:
            continue
        d = disease[key]
        f, cal, gap = d["faithfulness"], d["calibration"], d["skin_type"]["gap"]
        sup = f["supports"]
        th = cal.get("threshold_90")
        cov = f"{cal.get('coverage_at_90', 0):.3f}" + (
            f" (p >= {th:.2f})" if th is not None else ""
        )
        gap_cell = (f"type {gap['best']} - type {gap['worst']}: {_trust_cell(gap)}" if gap
                    else "fewer than 2 types")  # fmt: skip
        miss = lesion[key]["missed_malignancy"] if key in lesion else d["missed_malignancy"]
        lines.append(
            f"| {name} | {_trust_cell(f['precision'])} | {_trust_cell(f['recall'])} | "
            f"{_trust_cell(sup)} (n={sup.get('n', 0)}) | {_trust_cell(cal.get('ece'))} "
            f"(n={cal.get('ece', {}).get('n', 0)}) | {_trust_cell(cal.get('aurc'))} | {cov} | "
            f"{_trust_cell(miss)} | {gap_cell} |"
        )
    return "\n".join(lines)


def _claim_cell(c: dict) -> str:
    return f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] {verdict(c)}"


def render_rerun(committed: list[dict], rerun: dict) -> str:
    """The committed run's orderings beside a rerun of the same commit on another machine
    (``metrics/reruns/<machine>_<commit>.json``): difference [95% CI] and verdict in each, and
    whether the verdicts agree; then the rerun's wall time per stage."""
    lines = [
        f"| claim (set) | committed run | {rerun['machine'].split(' (')[0]} ({rerun['commit']}) "
        "| same verdict |",
        "|---|---|---|---|",
    ]
    theirs = {(c["claim"], c["set"]): c for c in rerun["claims"]}
    for c in committed:
        r = theirs[(c["claim"], c["set"])]
        same = "yes" if verdict(c) == verdict(r) else "no"
        lines.append(
            f"| {c['claim']} ({c['set']}) | {_claim_cell(c)} | {_claim_cell(r)} | {same} |"
        )
    st = rerun["stage_seconds"]
    lines += ["", "| " + " | ".join(st) + " | all |", "|" + "---|" * (len(st) + 1),
              "| " + " | ".join(f"{v:.0f}" for v in st.values())
              + f" | {rerun['wall_seconds']:.0f} |"]  # fmt: skip
    return "\n".join(lines)


def tables() -> list[str]:
    metrics = json.loads((ROOT / "metrics" / "metrics.json").read_text(encoding="utf-8"))
    claims = json.loads((ROOT / "metrics" / "claims.json").read_text(encoding="utf-8"))
    out = [render(metrics), render_claims(claims)]
    for f in sorted((ROOT / "metrics" / "reruns").glob("*_*.json")):
        rerun = json.loads(f.read_text(encoding="utf-8"))
        if isinstance(rerun, dict):  # the older claims-only lists are described in prose
            out.append(render_rerun(claims, rerun))
    trust = ROOT / "metrics" / "trust.json"
    if trust.is_file():
        out.append(render_trust(json.loads(trust.read_text(encoding="utf-8"))))
    return out


def main(argv: list[str]) -> int:
    out = tables()
    if "--check" in argv:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        stale = [t for t in out if t not in readme]
        if stale:
            print("README.md's results differ from metrics/:\n" + "\n\n".join(stale))
            return 1
        return 0
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
