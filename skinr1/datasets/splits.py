"""Seeded, grouped, label-stratified splits for datasets without (complete) official ones.

The paper keeps official splits and otherwise splits 6:2:2 at random. We go one step further:
whole groups (a patient or a lesion) move together, so the several images HAM10000 has of one
lesion never straddle train and test. Where a dataset ships only train and test, val is a
grouped 25% slice of the official train part, as in the authors' code (75/25), which keeps the
paper's 6:2:2 proportions when test is a fifth of the data.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

RANDOM_SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}
VAL_FROM_TRAIN = {"train": 0.75, "val": 0.25}


def grouped_split(
    groups: Sequence[str],
    strata: Sequence[str],
    fractions: Mapping[str, float],
    *,
    seed: int | str,
) -> list[str]:
    """Split name for every record; records sharing a group always get the same split.

    A group's stratum is its most common label; labels with fewer groups than it takes to
    give each split one (5 at 20%, 4 at 25%) are pooled into one stratum. Within each stratum
    every split except ``train`` gets round(n * fraction) of its n groups, train the rest —
    so every label with enough groups reaches val and test. Which group
    goes where: the groups are shuffled, then placed largest first, each into the split
    furthest below its share of the stratum's records (relative to that share; on a tie, the
    one it overshoots least) — so a patient with many images does not swamp a small split.
    """
    if len(groups) != len(strata):
        raise ValueError("groups and strata must have the same length")
    if "train" not in fractions:
        raise ValueError("fractions must include 'train'")
    labels: dict[str, Counter] = defaultdict(Counter)
    for g, s in zip(groups, strata, strict=True):
        labels[g][s] += 1
    by_label: dict[str, list[str]] = defaultdict(list)
    for g in sorted(labels):
        top = max(labels[g].values())
        by_label[min(s for s, n in labels[g].items() if n == top)].append(g)
    # Labels too rare to give every split a group share one stratum, so they still split
    # in proportion instead of all landing in train (or half of them in a 25% split).
    others = [f for k, f in fractions.items() if k != "train" and f > 0]
    need = max((math.ceil(1 / f) for f in others), default=1)
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for label, members in by_label.items():
        by_stratum[label if len(members) >= need else "\0rare"].extend(members)
    rng = random.Random(str(seed))
    total = sum(fractions.values())
    names = ["train", *(k for k in fractions if k != "train")]
    assignment: dict[str, str] = {}
    for stratum in sorted(by_stratum):
        members = by_stratum[stratum]
        rng.shuffle(members)
        size = {g: sum(labels[g].values()) for g in members}
        # Nearest integer, halves down: 2 groups at 25% give val none rather than half.
        slots = {
            k: min(math.ceil(len(members) * fractions[k] - 0.5), len(members)) for k in names[1:]
        }
        while sum(slots.values()) > len(members):  # only with fractions that overfill
            slots[max(slots, key=slots.get)] -= 1
        slots["train"] = len(members) - sum(slots.values())
        share = {k: sum(size.values()) * fractions[k] / total for k in names}
        filled = dict.fromkeys(names, 0)
        for g in sorted(members, key=lambda g: -size[g]):  # stable: ties stay shuffled
            open_ = [k for k in names if slots[k] > 0]
            # The split furthest below its share, relative to it; on a tie, the one that
            # overshoots least when it takes g.
            k = max(
                open_,
                key=lambda k: (
                    (share[k] - filled[k]) / (share[k] or 1.0),
                    (share[k] - filled[k] - size[g]) / (share[k] or 1.0),
                ),
            )
            assignment[g] = k
            slots[k] -= 1
            filled[k] += size[g]
    return [assignment[g] for g in groups]


def groups_across_splits(samples: Iterable) -> dict[str, list[str]]:
    """Groups whose samples sit in more than one split (should be empty): group -> splits."""
    seen: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        seen[s.group].add(s.split)
    return {g: sorted(sp) for g, sp in seen.items() if len(sp) > 1}
