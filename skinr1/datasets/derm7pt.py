"""Derm7pt (release_v0): ``meta/meta.csv``, ``meta/{train,valid,test}_indexes.csv``, ``images/``.

The index files hold 0-based row positions into meta.csv (``df.iloc``), not ``case_num`` —
the authors' loader matches them against ``case_num`` and is off by one; we do not copy that.
Each case gives two samples, the clinical and the dermoscopic photo, with a ``modality``
field and the case as group, so both photos of a lesion stay in the same split. Image paths
are relative to ``images/`` and the extension's case varies, so paths match case-insensitively.

The 7-point checklist columns give each sample's ``features`` (both photos of a case share
them), through ``CHECKLIST``: the vocabulary features (knowledge/features.yaml) a criterion's
value marks as present. Only what the checklist can record appears, so the tuple is the
*annotated subset* of what an image shows; ``ANNOTATED_VOCABULARY`` names that subset, and
faithfulness scores must count only those features (a stated "milia-like cysts" is neither
right nor wrong against Derm7pt). Left out on purpose:

- ``pigmentation`` (diffuse/localized, regular/irregular): no vocabulary feature describes it;
- vascular ``comma``, ``wreath`` and ``within regression``: no vocabulary vessel matches them,
  so they annotate "no vocabulary vessel" (an empty contribution, not an unknown value).

The checklist records one value per criterion (one vessel type per case). A value outside
``CHECKLIST`` (or an empty cell) leaves that case's ``features`` None — the annotation cannot
be read in full — and is counted in ``LoadResult.unannotated`` as ``"column: 'value'"``.
"""

from __future__ import annotations

from pathlib import Path

from skinr1.datasets.base import (
    IMAGE_SUFFIXES,
    DatasetLayoutError,
    LoadResult,
    RecordCollector,
    clean,
    find_child,
    find_nested,
    outside_root,
    read_table,
    unannotated_key,
)

NAME = "derm7pt"
HEADER = (
    "case_num",
    "diagnosis",
    "seven_point_score",
    "pigment_network",
    "streaks",
    "pigmentation",
    "regression_structures",
    "dots_and_globules",
    "blue_whitish_veil",
    "vascular_structures",
    "level_of_diagnostic_difficulty",
    "elevation",
    "location",
    "sex",
    "management",
    "clinic",
    "derm",
    "case_id",
    "notes",
)
INDEX_FILES = {"train": "train_indexes.csv", "val": "valid_indexes.csv", "test": "test_indexes.csv"}
PHOTOS = (("clinic", "clinical"), ("derm", "dermoscopic"))

# 7-point criterion column -> its values (as in the release, compared lower-case) -> the
# vocabulary features that value marks present. In meta.csv's column order, which is the order
# of a sample's ``features``. Values and their points: datasets.md §5.
_REGRESSION = ("regression structures",)
CHECKLIST: dict[str, dict[str, tuple[str, ...]]] = {
    "pigment_network": {
        "absent": (),
        "typical": ("typical pigment network",),
        "atypical": ("atypical pigment network",),
    },
    "streaks": {
        "absent": (),
        "regular": ("regular streaks",),
        "irregular": ("irregular streaks",),
    },
    "regression_structures": {
        "absent": (),
        "blue areas": _REGRESSION,
        "white areas": _REGRESSION,
        "combinations": _REGRESSION,
    },
    "dots_and_globules": {
        "absent": (),
        "regular": ("regular dots and globules",),
        "irregular": ("irregular dots and globules",),
    },
    "blue_whitish_veil": {"absent": (), "present": ("blue-white veil",)},
    "vascular_structures": {
        "absent": (),
        "arborizing": ("arborizing vessels",),
        "dotted": ("dotted vessels",),
        "hairpin": ("hairpin vessels",),
        "linear irregular": ("linear irregular vessels",),
        "comma": (),  # no vocabulary feature
        "wreath": (),  # no vocabulary feature
        "within regression": (),  # no vocabulary feature
    },
}
# The vocabulary features Derm7pt can annotate (present or absent): recall and precision of
# stated features against Derm7pt must be restricted to these.
ANNOTATED_VOCABULARY: frozenset[str] = frozenset(
    f for values in CHECKLIST.values() for feats in values.values() for f in feats
)


def checklist_features(row: dict[str, str]) -> tuple[tuple[str, ...] | None, list[str]]:
    """(features, problems) of one meta.csv row: the features its checklist values mark
    present, in CHECKLIST order, or None with the ``unannotated`` keys of the values that could
    not be read."""
    feats: list[str] = []
    problems: list[str] = []
    for column, values in CHECKLIST.items():
        text = (row.get(column) or "").strip()
        hit = values.get(text.lower())
        if hit is None:
            problems.append(unannotated_key(column, text))
        else:
            feats.extend(f for f in hit if f not in feats)
    return (None, problems) if problems else (tuple(feats), [])


def _official_splits(meta_dir: Path, n_rows: int) -> dict[int, str] | None:
    """Row position -> split from the index files; None when the release has none of them."""
    files = {sp: find_child(meta_dir, [name]) for sp, name in INDEX_FILES.items()}
    if all(f is None for f in files.values()):
        return None
    absent = [INDEX_FILES[sp] for sp, f in files.items() if f is None]
    if absent:
        raise DatasetLayoutError(
            f"{meta_dir}: split file(s) {absent} missing; expected all of "
            f"{list(INDEX_FILES.values())} or none"
        )
    out: dict[int, str] = {}
    for sp, path in files.items():
        for row in read_table(path, ["indexes"], ["indexes"]):
            try:
                pos = int(float(row["indexes"]))
            except ValueError:
                raise DatasetLayoutError(
                    f"{path}: {row['indexes']!r} is not a row position of meta.csv"
                ) from None
            if not 0 <= pos < n_rows:
                raise DatasetLayoutError(
                    f"{path}: row position {pos} outside meta.csv's {n_rows} rows "
                    "(positions are 0-based)"
                )
            if pos in out and out[pos] != sp:
                raise DatasetLayoutError(
                    f"{path}: row position {pos} is also in {INDEX_FILES[out[pos]]}"
                )
            out[pos] = sp
    return out


def load(root: Path, taxonomy, *, seed: int, check_images: bool = True) -> LoadResult:
    base = find_nested(root, ["meta"])
    meta = find_child(base / "meta", ["meta.csv"]) if base is not None else None
    if meta is None:
        raise DatasetLayoutError(
            f"{root}: no meta/meta.csv; expected Derm7pt's release_v0 layout "
            "(meta/meta.csv, meta/{train,valid,test}_indexes.csv, images/)"
        )
    rows = read_table(meta, ["diagnosis", "clinic", "derm"], HEADER)
    splits = _official_splits(meta.parent, len(rows))
    image_dir = find_child(base, ["images"])
    images: dict[str, Path] = {}
    if image_dir is not None:
        for p in sorted(image_dir.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                images.setdefault(p.relative_to(image_dir).as_posix().lower(), p)
    shown = (base / "images").relative_to(root.parent).as_posix()
    col = RecordCollector(NAME, taxonomy)
    if splits is None:
        col.result.notes.append("no split index files: grouped seeded 6:2:2 split by case")
    absent = [c for c in CHECKLIST if rows and c not in rows[0]]
    if absent:
        col.result.notes.append(
            f"meta.csv lacks the 7-point column(s) {absent}: no features annotated"
        )
    for pos, row in enumerate(rows):
        case = row.get("case_num") or str(pos + 1)
        features = None
        if not absent:
            features, problems = checklist_features(row)
            col.result.unannotated.update(problems)
        split = splits.get(pos) if splits is not None else None
        if splits is not None and split is None and row["diagnosis"]:
            for column, _ in PHOTOS:
                col.result.invalid.append(f"{case}-{column}: row {pos} is in no split file")
            continue
        for column, modality in PHOTOS:
            rel = row[column].replace("\\", "/")
            if rel and outside_root(rel):
                col.result.invalid.append(
                    f"{case}-{column}: image path {rel!r} leads outside images/ (not opened)"
                )
                continue
            col.add(
                f"{case}-{column}",
                row["diagnosis"],
                images.get(rel.lower()) if rel else None,
                split=split,
                group=f"case-{case}",
                modality=modality,
                sex=clean(row.get("sex")),
                site=clean(row.get("location")),
                features=features,
                expected=f"{shown}/{rel or '<empty ' + column + ' column>'}",
            )
    return col.finish(seed=seed, check_images=check_images)
