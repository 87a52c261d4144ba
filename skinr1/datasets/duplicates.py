"""The same image in two places: across datasets, across splits, or in a test set and training.

HAM10000 is ISIC 2018 Task 3's training set, and ISIC 2019's training set contains HAM10000 and
BCN20000 images, so OmniMedVQA's ISIC questions can show images RL trained on, and one image can
sit in two datasets' different splits. Two copies are the same image when their file names
carry the same ISIC id (``ISIC_NNNNNNN``; a re-encoded copy keeps its name) or when their bytes
have the same SHA-256 (a copy under another name). Every image is hashed, threaded like the
header check, since the cost is reading the files.

``find`` groups the copies; ``TrainIndex`` answers "is this image in a training split?" for
``evaluation.question_sets``, which drops such questions from the test and OOD sets.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ISIC_ID = re.compile(r"ISIC_\d{7}")
OOD = "ood"  # the split name of OmniMedVQA's questions here


@dataclass(frozen=True)
class Copy:
    """One image file as a dataset uses it."""

    dataset: str
    split: str  # train / val / test, or "ood" for OmniMedVQA
    id: str  # sample id, or the first question id for an OmniMedVQA image
    image: str
    node: str | None = None  # taxonomy node of its label; None when it has none

    @property
    def place(self) -> str:
        return f"{self.dataset}/{self.split}"


def isic_id(path: str | Path) -> str | None:
    """The ISIC id in a file name, e.g. ISIC_0027419 for ``ISIC_0027419.jpg``; None if none."""
    m = ISIC_ID.search(Path(path).name)
    return m.group(0) if m else None


def file_hash(path: str | Path) -> str | None:
    """SHA-256 of the file's bytes; None when it cannot be read (counted elsewhere)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def hash_files(paths: Sequence[str | Path], workers: int = 8) -> dict[str, str | None]:
    """``file_hash`` for many files, keyed by the path as given (hashlib releases the GIL)."""
    unique = list(dict.fromkeys(str(p) for p in paths))
    if len(unique) < 64:
        return {p: file_hash(p) for p in unique}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(unique, pool.map(file_hash, unique, chunksize=64), strict=True))


def copies_of(results: Mapping, questions: Iterable = (), taxonomy=None) -> list[Copy]:
    """One Copy per usable sample of the LoadResults, and one per distinct OmniMedVQA image
    (several questions may show one image)."""
    out = [
        Copy(s.dataset, s.split, s.id, s.image, s.node)
        for name, res in results.items()
        if res is not None and name != "OmniMedVQA"
        for s in res.samples
    ]
    seen: set[str] = set()
    for q in questions:
        if q.image in seen:
            continue
        seen.add(q.image)
        node = None
        if taxonomy is not None:
            try:
                node = taxonomy.map_label("OmniMedVQA", q.answer_text)
            except KeyError:
                node = None
        out.append(Copy("OmniMedVQA", OOD, q.id, q.image, node))
    return out


@dataclass
class DuplicateReport:
    groups: list[list[Copy]] = field(default_factory=list)  # >= 2 distinct files each
    by_isic_id: int = 0  # groups joined by a shared ISIC id (maybe also by content)
    by_content: int = 0  # groups joined by content only
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # ISIC id -> its labels
    unhashed: list[str] = field(default_factory=list)  # files that could not be read

    def places(self) -> Counter:
        """How often each combination of places shares an image: "A/train + B/ood" -> n."""
        return Counter(" + ".join(sorted({c.place for c in g})) for g in self.groups)

    def leaks(self) -> Counter:
        """Per place outside a training split: its copies whose image is also in a training
        split (of any dataset), i.e. what the test and OOD sets lose when duplicates go."""
        out: Counter = Counter()
        for g in self.groups:
            if any(c.split == "train" for c in g):
                trained = {c.image for c in g if c.split == "train"}
                for c in g:
                    if c.split != "train" and c.image not in trained:
                        out[c.place] += 1
        return out

    def to_json(self) -> dict:
        cross = sum(len({c.dataset for c in g}) > 1 for g in self.groups)
        return {
            "groups": len(self.groups),
            "images": sum(len(g) for g in self.groups),
            "across_datasets": cross,
            "within_a_dataset": len(self.groups) - cross,
            "by_isic_id": self.by_isic_id,
            "by_content_only": self.by_content,
            "places": dict(sorted(self.places().items(), key=lambda kv: (-kv[1], kv[0]))),
            "in_training_split": dict(sorted(self.leaks().items())),
            "conflicting_labels": self.conflicts,
            "unreadable": list(self.unhashed),
            "names": [[f"{c.place}/{c.id}" for c in g] for g in self.groups],
        }


def find(
    copies: Sequence[Copy], taxonomy=None, *, hashes: Mapping | None = None
) -> DuplicateReport:
    """Group the copies that are one image (shared ISIC id or identical bytes)."""
    hashes = hash_files([c.image for c in copies]) if hashes is None else hashes
    parent = list(range(len(copies)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(members: list[int]) -> None:
        for j in members[1:]:
            parent[root(j)] = root(members[0])

    by_id: dict[str, list[int]] = defaultdict(list)
    by_hash: dict[str, list[int]] = defaultdict(list)
    report = DuplicateReport()
    for i, c in enumerate(copies):
        key = isic_id(c.image)
        if key:
            by_id[key].append(i)
        digest = hashes.get(c.image)
        if digest is None:
            report.unhashed.append(c.image)
        else:
            by_hash[digest].append(i)
    for members in (*by_id.values(), *by_hash.values()):
        join(members)
    components: dict[int, list[int]] = defaultdict(list)
    for i in range(len(copies)):
        components[root(i)].append(i)
    id_joined = {root(m[0]) for m in by_id.values() if len({copies[i].image for i in m}) > 1}
    for r, members in components.items():
        if len({copies[i].image for i in members}) < 2:
            continue
        report.groups.append([copies[i] for i in members])
        if r in id_joined:
            report.by_isic_id += 1
        else:
            report.by_content += 1
    report.groups.sort(key=lambda g: sorted(f"{c.place}/{c.id}" for c in g))
    for key, members in sorted(by_id.items()):
        labelled = [copies[i] for i in members if copies[i].node is not None]
        if taxonomy is not None and _disagree([c.node for c in labelled], taxonomy):
            report.conflicts[key] = [f"{c.place}: {c.node}" for c in labelled]
    return report


def _disagree(nodes: list[str], taxonomy) -> bool:
    """Two labels disagree unless one is the other or an ancestor of it (HAM10000's "benign
    keratosis-like lesion" and ISIC 2019's "seborrheic keratosis" agree)."""
    distinct = sorted(set(nodes))
    for i, a in enumerate(distinct):
        for b in distinct[i + 1 :]:
            if a not in taxonomy.path(b) and b not in taxonomy.path(a):
                return True
    return False


class TrainIndex:
    """The ISIC ids and content hashes of every image in a training split."""

    def __init__(self, train_images: Iterable[str], hashes: Mapping | None = None) -> None:
        images = list(dict.fromkeys(str(p) for p in train_images))
        hashes = hash_files(images) if hashes is None else hashes
        self.images = set(images)
        self.ids = {k for k in map(isic_id, images) if k}
        self.hashes = {hashes[p] for p in images if hashes.get(p)}

    def why(self, image: str, digest: str | None) -> str | None:
        """ "isic_id" or "content" when the image is in a training split; None otherwise.
        The very file a training sample uses counts as content."""
        key = isic_id(image)
        if key and key in self.ids and image not in self.images:
            return "isic_id"
        if image in self.images or (digest is not None and digest in self.hashes):
            return "content"
        return None
