"""Loaders for the six RL datasets and the OmniMedVQA test set, one module each.

Every loader takes the dataset's own folder (named as the keys of ``LOADERS`` under a data
root) and returns a LoadResult: usable samples plus every excluded record, counted by reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from skinr1.datasets import (
    bcn20000,
    derm7pt,
    derm12345,
    dermnet,
    ham10000,
    omnimedvqa,
    pad_ufes20,
)
from skinr1.datasets.base import (
    SPLITS,
    DatasetLayoutError,
    LoadResult,
    Sample,
    TextbookCase,
    resolve_dir,
    to_hf_dataset,
)

LOADERS: dict[str, Callable[..., LoadResult]] = {
    "HAM10000": ham10000.load,
    "PAD-UFES-20": pad_ufes20.load,
    "BCN20000": bcn20000.load,
    "derm12345": derm12345.load,
    "derm7pt": derm7pt.load,
    "dermnet": dermnet.load,
    "OmniMedVQA": omnimedvqa.load,
}
# The six datasets of RL training and in-distribution test; OmniMedVQA is test-only (OOD).
RL_DATASETS = tuple(n for n in LOADERS if n != "OmniMedVQA")


def dataset_dir(root: Path, name: str) -> Path | None:
    """The dataset's folder under ``root`` (name matched case-insensitively), or None."""
    folder = resolve_dir(Path(root), name)
    return folder if folder is not None and folder.is_dir() else None


def load_all(
    root: Path,
    taxonomy,
    *,
    seed: int,
    names: Iterable[str] | None = None,
    check_images: bool = True,
) -> dict[str, LoadResult | None]:
    """Load every dataset found under ``root``; None for a dataset whose folder is absent.

    A folder that is present but unrecognisable raises DatasetLayoutError naming the file
    that was expected.
    """
    names = list(LOADERS) if names is None else list(names)
    unknown = [n for n in names if n not in LOADERS]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; known: {list(LOADERS)}")
    out: dict[str, LoadResult | None] = {}
    for name in names:
        folder = dataset_dir(root, name)
        out[name] = (
            None
            if folder is None
            else LOADERS[name](folder, taxonomy, seed=seed, check_images=check_images)
        )
    return out


__all__ = [
    "LOADERS",
    "RL_DATASETS",
    "SPLITS",
    "DatasetLayoutError",
    "LoadResult",
    "Sample",
    "TextbookCase",
    "dataset_dir",
    "load_all",
    "to_hf_dataset",
]
