"""Grouped, stratified, seeded splits: no group in two splits, exact proportions, determinism."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from skinr1.datasets.splits import (
    RANDOM_SPLIT,
    VAL_FROM_TRAIN,
    grouped_split,
    groups_across_splits,
)


def test_six_two_two_on_singleton_groups():
    groups = [f"g{i}" for i in range(1000)]
    out = grouped_split(groups, ["a"] * 1000, RANDOM_SPLIT, seed=7)
    assert Counter(out) == {"train": 600, "val": 200, "test": 200}


def test_val_slice_of_train():
    out = grouped_split([str(i) for i in range(100)], ["a"] * 100, VAL_FROM_TRAIN, seed=7)
    assert Counter(out) == {"train": 75, "val": 25}


def test_groups_never_straddle_splits():
    # 300 lesions with 1-4 images each, as in HAM10000.
    groups = [f"lesion{i}" for i in range(300) for _ in range(1 + i % 4)]
    labels = ["nv" if int(g[6:]) % 3 else "mel" for g in groups]
    out = grouped_split(groups, labels, RANDOM_SPLIT, seed=1)
    per_group: dict[str, set[str]] = {}
    for g, s in zip(groups, out, strict=True):
        per_group.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in per_group.values())
    samples = [SimpleNamespace(group=g, split=s) for g, s in zip(groups, out, strict=True)]
    assert groups_across_splits(samples) == {}


def test_stratified_rare_classes_reach_val_and_test():
    # Five groups per label: round(5 * 0.2) = 1 each to val and test, 3 to train.
    groups = [f"{lab}{i}" for lab in "abcd" for i in range(5)]
    labels = [g[0] for g in groups]
    out = grouped_split(groups, labels, RANDOM_SPLIT, seed=3)
    for lab in "abcd":
        got = Counter(s for s, l_ in zip(out, labels, strict=True) if l_ == lab)
        assert got == {"train": 3, "val": 1, "test": 1}
    # Two groups are too few to give val and test one each: both stay in train.
    assert grouped_split(["x", "y"], ["r", "r"], RANDOM_SPLIT, seed=3) == ["train", "train"]


def test_rare_labels_are_pooled():
    # Ten labels of two groups each: none could fill val and test alone, pooled they split
    # 20 groups 12:4:4 instead of all going to train.
    groups = [f"{lab}{i}" for lab in "abcdefghij" for i in range(2)]
    out = grouped_split(groups, [g[0] for g in groups], RANDOM_SPLIT, seed=4)
    assert Counter(out) == {"train": 12, "val": 4, "test": 4}


def test_large_groups_are_spread_by_share():
    # One patient with 10 images and 19 with one: by groups 12:4:4 either way, but the big
    # group must go where it least distorts the image shares, i.e. train.
    groups = ["big"] * 10 + [f"p{i}" for i in range(19)]
    out = grouped_split(groups, ["a"] * len(groups), RANDOM_SPLIT, seed=9)
    assert out[0] == "train"
    assert Counter(out) == {"train": 21, "val": 4, "test": 4}


def test_a_group_follows_its_majority_label():
    groups = ["p1", "p1", "p1"] + [f"q{i}" for i in range(4)]
    labels = ["a", "b", "b"] + ["b"] * 4  # p1 is stratum b: 5 groups of b, 0 of a
    out = grouped_split(groups, labels, RANDOM_SPLIT, seed=0)
    assert Counter(out[i] for i in range(2, 7)) == {"train": 3, "val": 1, "test": 1}


def test_deterministic_and_seed_dependent():
    groups = [f"g{i}" for i in range(50)]
    labels = ["a" if i % 2 else "b" for i in range(50)]
    a = grouped_split(groups, labels, RANDOM_SPLIT, seed=11)
    assert a == grouped_split(groups, labels, RANDOM_SPLIT, seed=11)
    assert a != grouped_split(groups, labels, RANDOM_SPLIT, seed=12)
    # Input order does not matter: the split of a group is a function of the set of groups.
    rev = grouped_split(groups[::-1], labels[::-1], RANDOM_SPLIT, seed=11)
    assert rev[::-1] == a


def test_bad_arguments():
    with pytest.raises(ValueError, match="same length"):
        grouped_split(["a"], [], RANDOM_SPLIT, seed=0)
    with pytest.raises(ValueError, match="train"):
        grouped_split(["a"], ["x"], {"val": 1.0}, seed=0)
