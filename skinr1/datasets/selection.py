"""What a pipeline stage loads: the configured datasets under ``data.root``, or a clear error."""

from __future__ import annotations

from pathlib import Path

from skinr1.datasets import load_all
from skinr1.datasets.base import LoadResult, Sample


def load_configured(root: str | Path, names: list[str], taxonomy, *, seed: int,
                    check_images: bool = True) -> dict[str, LoadResult]:  # fmt: skip
    """Load ``names`` under ``root``; a missing root or dataset folder stops the stage with the
    parameter to fix (a stage must not train on a silently smaller dataset)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"data.root = {str(root)!r} does not exist. Run `dvc repro demo_data` for the embedded "
            "demo, or set data.root in params.yaml to the folder holding your downloads."
        )
    results = load_all(root, taxonomy, seed=seed, names=names, check_images=check_images)
    absent = [n for n, r in results.items() if r is None]
    if absent:
        raise FileNotFoundError(
            f"data.rl_datasets / data.ood_dataset name {absent}, but there is no such folder under "
            f"data.root = {str(root)!r}. Put each dataset in a folder of exactly that name, or remove "
            "it from the list in params.yaml."
        )
    return results


def split_samples(results: dict[str, LoadResult], split: str) -> list[Sample]:
    """All usable samples of one split, datasets in the configured order."""
    return [s for r in results.values() for s in r.split(split)]


def exclusion_table(results: dict[str, LoadResult]):
    """Per dataset: usable samples per split and every exclusion reason, for the notebooks."""
    import pandas as pd

    rows = {}
    for name, r in results.items():
        rows[name] = {**r.counts(), "unmapped": sum(r.unmapped.values()),
                      "missing images": len(r.missing_images),
                      "unreadable images": len(r.unreadable_images),
                      "empty labels": len(r.empty_labels), "invalid": len(r.invalid)}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index")
