"""One sample record and one loader result for every dataset, whatever its on-disk layout."""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image

SPLITS = ("train", "val", "test")


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder is present but not recognisable; the message names the expected file."""


@dataclass(frozen=True)
class Sample:
    id: str
    image: str  # absolute path to the image file
    dataset: str
    raw_label: str
    node: str  # taxonomy node the raw label maps to
    path: tuple[str, ...]  # taxonomy path, coarsest first, ending at ``node``
    malignancy: str
    split: str  # one of SPLITS
    modality: str = "dermoscopic"  # "dermoscopic" or "clinical"
    age: float | None = None
    sex: str | None = None
    site: str | None = None
    group: str = ""  # patient or lesion key; samples sharing it never straddle splits
    # Fitzpatrick skin type I-VI as 1-6, where the dataset (or an annotations sidecar, see
    # datasets/annotations.py) records it; None = not recorded. Needed for fairness by skin type.
    skin_type: int | None = None
    # Visual features the dataset's annotators marked as present, in the closed vocabulary of
    # knowledge/features.yaml; None = the dataset annotates no features for this image, () =
    # annotated and none present. Only the criteria a dataset records can appear (see e.g.
    # derm7pt.ANNOTATED_VOCABULARY): faithfulness scoring must count only those.
    features: tuple[str, ...] | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = list(self.path)
        d["features"] = None if self.features is None else list(self.features)
        return d


@dataclass
class LoadResult:
    """Usable samples plus everything that was excluded, counted and named."""

    dataset: str
    samples: list[Sample] = field(default_factory=list)
    unmapped: Counter = field(default_factory=Counter)  # raw label -> rows
    missing_images: list[str] = field(default_factory=list)
    unreadable_images: list[str] = field(default_factory=list)
    empty_labels: list[str] = field(default_factory=list)  # ids of rows without a label
    invalid: list[str] = field(default_factory=list)  # "id: reason" for other excluded records
    notes: list[str] = field(default_factory=list)  # what was skipped on purpose, and why
    # How each mapped raw label found its node: "explicit" (the label map), "synonym" (the
    # taxonomy's names, see datasets/names.py) or "folder" (DermNet's class folder).
    resolved: dict[str, str] = field(default_factory=dict)
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)  # raw -> nodes it matches
    # "column: value" -> records whose annotation (skin type, features) was left None because
    # the value is empty, a placeholder, out of range or not understood. The records are still
    # used; only the annotation is missing, so this is not part of ``excluded``.
    unannotated: Counter = field(default_factory=Counter)

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, int]:
        return {sp: sum(s.split == sp for s in self.samples) for sp in SPLITS}

    def excluded(self) -> int:
        return (
            sum(self.unmapped.values())
            + len(self.missing_images)
            + len(self.unreadable_images)
            + len(self.empty_labels)
            + len(self.invalid)
        )


def to_hf_dataset(samples: list[Sample]):
    """A ``datasets.Dataset`` of the records, with a decoded ``image`` column."""
    import datasets

    rows = [s.to_dict() for s in samples]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "image": datasets.Image(),
            "dataset": datasets.Value("string"),
            "raw_label": datasets.Value("string"),
            "node": datasets.Value("string"),
            "path": datasets.Sequence(datasets.Value("string")),
            "malignancy": datasets.Value("string"),
            "split": datasets.Value("string"),
            "modality": datasets.Value("string"),
            "age": datasets.Value("float32"),
            "sex": datasets.Value("string"),
            "site": datasets.Value("string"),
            "group": datasets.Value("string"),
            "skin_type": datasets.Value("int64"),
            "features": datasets.Sequence(datasets.Value("string")),
        }
    )
    return datasets.Dataset.from_list(rows, features=features)


def resolve_dir(parent: Path, name: str) -> Path | None:
    """Child folder or file of ``parent`` named ``name``, matched case-insensitively."""
    exact = parent / name
    if exact.exists():
        return exact
    if not parent.is_dir():
        return None
    low = name.lower()
    for child in sorted(parent.iterdir()):
        if child.name.lower() == low:
            return child
    return None


@dataclass(frozen=True)
class TextbookCase:
    """A textbook exemplar (I_i, r_i, d_i): image, diagnostic rationale, diagnosis node."""

    id: str
    image: str
    rationale: str
    diagnosis: str


# --- helpers shared by the loaders -------------------------------------------------------------

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Splits a loader may hand to RecordCollector instead of a final one: None = no official split
# (seeded 6:2:2), TRAIN_POOL = official training part from which val is sliced (75:25).
TRAIN_POOL = "train+val"


def find_child(parent: Path, names: Iterable[str]) -> Path | None:
    """The first of ``names`` that exists under ``parent``, matched case-insensitively."""
    for name in names:
        hit = resolve_dir(parent, name)
        if hit is not None:
            return hit
    return None


def find_nested(root: Path, names: Iterable[str], depth: int = 2) -> Path | None:
    """``root`` or a folder up to ``depth`` levels below it that holds one of ``names``.

    Archives unpack with an extra level (``derm7pt/release_v0/meta``,
    ``OmniMedVQA/OmniMedVQA/QA_information``), so the loaders look a little way down.
    """
    names = list(names)
    frontier = [root]
    for _ in range(depth + 1):
        nxt = []
        for folder in frontier:
            if find_child(folder, names) is not None:
                return folder
            nxt.extend(c for c in sorted(folder.iterdir()) if c.is_dir())
        frontier = nxt
    return None


def index_images(folders: Iterable[Path], *, by_stem: bool = False) -> dict[str, Path]:
    """Lower-case file name (or stem) -> path for every image below ``folders``.

    The first path in sorted order wins, so duplicated upper/lower-case copies of a folder
    (seen in HAM10000 unzips) resolve deterministically.
    """
    index: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                key = (path.stem if by_stem else path.name).lower()
                index.setdefault(key, path)
    return index


def read_table(
    path: Path, required: Sequence[str], expected: Sequence[str]
) -> list[dict[str, str]]:
    """Rows of a CSV or tab-separated file as dicts of stripped strings.

    Handles a UTF-8 byte-order mark, quoted values and either delimiter (Dataverse serves
    ``.tab`` files, Kaggle ``.csv``). A header without the ``required`` columns raises
    DatasetLayoutError naming the file and the ``expected`` header.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    first = text.split("\n", 1)[0]
    if not first.strip():
        raise DatasetLayoutError(f"{path}: file is empty; expected a header: {','.join(expected)}")
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetLayoutError(
            f"{path}: header lacks column(s) {missing}; found {header}; expected a header like: "
            f"{','.join(expected)}"
        )
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue  # blank line
        values = [v.strip() for v in values] + [""] * (len(header) - len(values))
        rows.append(dict(zip(header, values, strict=False)))  # extra fields dropped
    return rows


def image_problem(path: Path) -> str | None:
    """None if the image header parses, else "missing" or "unreadable" (a header check only)."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError, SyntaxError):  # UnidentifiedImageError is an OSError
        return "unreadable"
    return None if width > 0 and height > 0 else "unreadable"


def check_image_files(paths: Sequence[Path], workers: int = 8) -> list[str | None]:
    """``image_problem`` for many files; threads, because the cost is file-system latency."""
    if len(paths) < 64:
        return [image_problem(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(image_problem, paths, chunksize=64))


def outside_root(rel: str) -> bool:
    """True when a path read from a metadata file would leave the dataset's folder (absolute, or
    climbing out with ``..``); such a path is reported as invalid and never opened."""
    rel = rel.replace("\\", "/")
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return True
    depth = 0
    for part in PurePosixPath(rel).parts:
        depth += -1 if part == ".." else part != "."
        if depth < 0:
            return True
    return False


def parse_age(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def parse_skin_type(text: str | None) -> int | None:
    """Fitzpatrick type 1-6 from a numeric cell ("3", "3.0"), else None (empty, a placeholder
    such as ``UNK``, a fraction, or outside I-VI — e.g. Fitzpatrick17k's -1 for unknown)."""
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return int(value) if value.is_integer() and 1 <= value <= 6 else None


def unannotated_key(column: str, text: str | None) -> str:
    """The ``LoadResult.unannotated`` key of a value that gave no annotation."""
    text = (text or "").strip()
    return f"{column}: {text!r}" if text else f"{column}: <empty>"


def clean(text: str | None) -> str | None:
    """Metadata value, or None when empty or a known placeholder."""
    if text is None:
        return None
    text = text.strip()
    return None if text.lower() in {"", "nan", "none", "unk", "unknown", "null"} else text


@dataclass
class _Record:
    id: str
    raw_label: str
    image: Path | None
    expected: str
    split: str | None
    group: str
    modality: str
    age: float | None
    sex: str | None
    site: str | None
    skin_type: int | None = None
    features: tuple[str, ...] | None = None


class RecordCollector:
    """Collects a dataset's labelled records, then splits, maps and checks them in one place.

    Each record ends up in exactly one of: samples, unmapped, missing_images,
    unreadable_images, empty_labels or invalid — so nothing is dropped silently.
    Splits are assigned before labels are mapped or images checked, so they depend only on
    the metadata and the seed: a knowledge-base update or a corrupt file moves no sample.
    """

    def __init__(self, dataset: str, taxonomy, resolve: Callable | None = None) -> None:
        """``resolve(raw)`` -> ``names.Resolution``; by default the dataset's label map only."""
        self.dataset = dataset
        self.taxonomy = taxonomy
        self.result = LoadResult(dataset)
        self._records: list[_Record] = []
        self._labels: dict[str, str] = {}  # id -> raw label of the first record
        self._resolve = resolve

    def add(
        self,
        id: str,
        raw_label: str | None,
        image: Path | None,
        *,
        split: str | None = None,
        group: str = "",
        modality: str = "dermoscopic",
        age: float | None = None,
        sex: str | None = None,
        site: str | None = None,
        skin_type: int | None = None,
        features: tuple[str, ...] | None = None,
        expected: str = "",
    ) -> None:
        raw = (raw_label or "").strip()
        if not raw:
            self.result.empty_labels.append(id)
            return
        if id in self._labels:
            first = self._labels[id]
            why = "" if first == raw else f" with a different label {raw!r} (the first: {first!r})"
            self.result.invalid.append(f"{id}: duplicate record{why} (kept the first)")
            return
        self._labels[id] = raw
        self._records.append(
            _Record(
                id,
                raw,
                image,
                expected or str(image),
                split,
                group or id,
                modality,
                age,
                sex,
                site,
                skin_type,
                features,
            )
        )

    def map_label(self, raw: str) -> str | None:
        try:
            return self.taxonomy.map_label(self.dataset, raw)
        except KeyError:  # the knowledge base has no map for this dataset yet
            return None

    def _resolution(self, raw: str) -> tuple[str | None, str | None]:
        if self._resolve is None:
            node = self.map_label(raw)
            return node, "explicit" if node is not None else None
        res = self._resolve(raw)
        if res.candidates:
            self.result.ambiguous[raw] = res.candidates
        return res.node, res.method

    def finish(self, *, seed: int, check_images: bool = True) -> LoadResult:
        from skinr1.datasets.splits import RANDOM_SPLIT, VAL_FROM_TRAIN, grouped_split

        for pool, fractions in ((None, RANDOM_SPLIT), (TRAIN_POOL, VAL_FROM_TRAIN)):
            recs = [r for r in self._records if r.split == pool]
            assigned = grouped_split(
                [r.group for r in recs],
                [r.raw_label for r in recs],
                fractions,
                seed=f"{seed}:{self.dataset}:{pool}",
            )
            for r, sp in zip(recs, assigned, strict=True):
                r.split = sp
        res, nodes = self.result, {}
        candidates = []
        for r in self._records:
            if r.raw_label not in nodes:
                nodes[r.raw_label], how = self._resolution(r.raw_label)
                if how is not None:
                    res.resolved[r.raw_label] = how
            if nodes[r.raw_label] is None:
                res.unmapped[r.raw_label] += 1
            elif r.image is None or not r.image.is_file():
                res.missing_images.append(r.expected)
            else:
                candidates.append(r)
        problems = check_image_files([r.image for r in candidates]) if check_images else []
        for i, r in enumerate(candidates):
            problem = problems[i] if problems else None
            if problem == "missing":
                res.missing_images.append(r.expected)
                continue
            if problem == "unreadable":
                res.unreadable_images.append(str(r.image))
                continue
            node = nodes[r.raw_label]
            res.samples.append(
                Sample(
                    id=r.id,
                    image=os.path.abspath(r.image),
                    dataset=self.dataset,
                    raw_label=r.raw_label,
                    node=node,
                    path=tuple(self.taxonomy.path(node)),
                    malignancy=self.taxonomy.malignancy(node),
                    split=r.split,
                    modality=r.modality,
                    age=r.age,
                    sex=r.sex,
                    site=r.site,
                    group=r.group,
                    skin_type=r.skin_type,
                    features=r.features,
                )
            )
        return res
