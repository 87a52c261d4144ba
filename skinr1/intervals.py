"""Intervals and tests for the evaluation: every accuracy and every difference between models comes
with a 95% bootstrap interval over the same questions, and a paired difference with McNemar's
exact test.

The bootstrap resamples questions within each dataset (a stratified bootstrap), so each replicate
keeps the test split sizes: the pooled accuracy (the paper's "Avg.", weighted by test size) and the
unweighted mean over datasets are then both well defined in every replicate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Below this many questions an interval says little; it is reported as uninformative.
MIN_N = 30


def _strata(datasets: Sequence[str]) -> list[np.ndarray]:
    names = np.asarray(datasets)
    return [np.flatnonzero(names == d) for d in sorted(set(datasets))]


def _replicates(values: np.ndarray, strata: list[np.ndarray], n_boot: int, seed: int):
    """(pooled, unweighted-mean-over-strata) of ``values`` for ``n_boot`` stratified resamples."""
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    means = np.zeros((n_boot, len(strata)))
    for j, idx in enumerate(strata):
        draws = values[idx][rng.integers(0, len(idx), size=(n_boot, len(idx)))]
        total += draws.sum(axis=1)
        means[:, j] = draws.mean(axis=1)
    return total / sum(len(i) for i in strata), means.mean(axis=1)


def _interval(point: float, reps: np.ndarray, n: int) -> dict:
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return {"value": float(point), "ci_low": float(lo), "ci_high": float(hi), "n": n,
            "informative": n >= MIN_N}  # fmt: skip


def accuracy_ci(correct: Sequence[bool], datasets: Sequence[str], *, n_boot: int = 5000,
                seed: int = 0) -> dict[str, dict]:  # fmt: skip
    """Pooled and dataset-averaged accuracy with 95% stratified-bootstrap intervals."""
    if len(correct) != len(datasets) or not correct:
        raise ValueError("accuracy_ci needs one dataset name per answer, and answers")
    x = np.asarray(correct, dtype=float)
    strata = _strata(datasets)
    pooled, avg = _replicates(x, strata, n_boot, seed)
    return {
        "pooled": _interval(x.mean(), pooled, len(x)),
        "avg": _interval(np.mean([x[i].mean() for i in strata]), avg, len(x)),
    }


def mcnemar_p(a: Sequence[bool], b: Sequence[bool]) -> float:
    """McNemar's exact (binomial) two-sided p-value on the discordant pairs of a paired test."""
    n01 = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    n10 = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    n = n01 + n10
    if n == 0:
        return 1.0
    k = min(n01, n10)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_difference(a: Sequence[bool], b: Sequence[bool], datasets: Sequence[str], *,
                      n_boot: int = 5000, seed: int = 0, average: str = "pooled") -> dict:  # fmt: skip
    """mean(a) - mean(b) over the same questions (pooled, or averaged over datasets), with its
    95% paired stratified-bootstrap interval and McNemar's p-value."""
    if not len(a) == len(b) == len(datasets) or not a:
        raise ValueError("paired_difference needs the same questions, answered by both models")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    strata = _strata(datasets)
    pooled, avg = _replicates(d, strata, n_boot, seed)
    point = d.mean() if average == "pooled" else np.mean([d[i].mean() for i in strata])
    out = _interval(point, pooled if average == "pooled" else avg, len(d))
    return {**out, "p_value": mcnemar_p(a, b)}


def unpaired_difference(a: Sequence[bool], b: Sequence[bool], *, n_boot: int = 5000,
                        seed: int = 0) -> dict:  # fmt: skip
    """mean(a) - mean(b) for two different question sets (each resampled on its own), with a 95%
    bootstrap interval; no paired test applies, so no p-value."""
    if not a or not b:
        raise ValueError("unpaired_difference needs answers in both sets")
    rng = np.random.default_rng(seed)
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ra = xa[rng.integers(0, len(xa), size=(n_boot, len(xa)))].mean(axis=1)
    rb = xb[rng.integers(0, len(xb), size=(n_boot, len(xb)))].mean(axis=1)
    out = _interval(xa.mean() - xb.mean(), ra - rb, min(len(xa), len(xb)))
    return {**out, "p_value": None, "n_a": len(xa), "n_b": len(xb)}


def holds(diff: dict, direction: int = 1) -> bool:
    """The claim "a > b" (direction 1) or "a < b" (-1) holds only when the interval excludes
    zero in that direction and is informative."""
    if not diff["informative"]:
        return False
    return diff["ci_low"] > 0 if direction > 0 else diff["ci_high"] < 0


def cell(ci: dict) -> str:
    """An interval as a table shows it: ``value [low, high]`` to three decimals."""
    return f"{ci['value']:.3f} [{ci['ci_low']:.3f}, {ci['ci_high']:.3f}]"
