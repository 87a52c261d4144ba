"""The README's results table, rendered from ``metrics/metrics.json`` (notebook 05's output).

python tools/results_table.py            # print the table
python tools/results_table.py --check    # exit 1 if README.md does not hold it verbatim
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "base": "Base (tiny, warmed up)",
    "sft": "SFT",
    "rl_without_sft": "RL without SFT",
    "sft_rl": "Skin-R1 (SFT + RL)",
}
# (column header, question set, summary key): disease, lesion and OOD are averaged over datasets
# (OOD: over OmniMedVQA's sources) as in Tables 2, 3 and 5; the DDx and hierarchical stress sets
# are pooled.
COLUMNS = [
    ("disease acc (ID avg)", "disease", "avg_acc"),
    ("invalid (disease)", "disease", "invalid_rate"),
    ("lesion acc", "lesion", "avg_acc"),
    ("lesion macro-F1", "lesion", "avg_f1"),
    ("DDx acc", "ddx", "pooled_acc"),
    ("hierarchical acc", "hierarchical", "pooled_acc"),
    ("OOD acc", "ood", "avg_acc"),
]


def render(metrics: dict) -> str:
    lines = [
        "| model | " + " | ".join(c[0] for c in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for key, name in MODELS.items():
        cells = [f"{metrics[s][key][k]:.3f}" for _, s, k in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    table = render(json.loads((ROOT / "metrics" / "metrics.json").read_text(encoding="utf-8")))
    if "--check" in argv:
        if table not in (ROOT / "README.md").read_text(encoding="utf-8"):
            print("README.md's results table differs from metrics/metrics.json:\n" + table)
            return 1
        return 0
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
