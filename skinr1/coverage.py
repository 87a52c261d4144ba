"""How the knowledge base covers the datasets: one row per raw label, for notebook 01's tables."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def knowledge_statistics(tax, ddx, rules) -> dict:
    """Flat statistics (nodes, depth, leaves, edges, degree, rules) for metrics/knowledge.json."""
    from skinr1.ddx import statistics

    s = statistics(tax, ddx)
    flat = {k: v for k, v in s.items() if not isinstance(v, dict)}
    flat.update({f"ddx_{k}": v for k, v in s["ddx"].items() if not isinstance(v, (dict, list))})
    flat["rules"] = len(rules.rules)
    flat.update({f"malignancy_{k.replace(' ', '_')}": v for k, v in s["malignancy"].items()})
    return flat


def coverage_table(tax, rules, ddx, *, data_root: Path | None = None, seed: int = 0):
    """Every raw label in datasets.yaml: its node, depth, malignancy, rule and DDx neighbours,
    and (when ``data_root`` holds the datasets) how many usable samples carry it."""
    import pandas as pd

    from skinr1.datasets import load_all

    counts: dict[str, Counter] = {}
    if data_root is not None and Path(data_root).is_dir():
        for name, res in load_all(Path(data_root), tax, seed=seed, check_images=False).items():
            if res is not None:
                counts[name] = Counter(s.raw_label for s in res.samples)
    rows = []
    for ds, table in tax.dataset_maps.items():
        labels = list(table) + list(tax.out_of_scope.get(ds, {}))
        for raw in labels:
            node = tax.map_label(ds, raw)
            rows.append({
                "dataset": ds, "raw label": raw, "node": node,
                "path": " > ".join(tax.path(node)) if node else None,
                "depth": tax.depth(node) if node else None,
                "malignancy": tax.malignancy(node) if node else None,
                "rule": bool(node) and (node in rules.rules or any(a in rules.rules for a in tax.ancestors(node))),
                "DDx neighbours": len(ddx.neighbours(node)) if node else 0,
                "samples": counts.get(ds, Counter()).get(raw, 0),
                "out of scope": tax.out_of_scope.get(ds, {}).get(raw),
            })  # fmt: skip
    return pd.DataFrame(rows)
