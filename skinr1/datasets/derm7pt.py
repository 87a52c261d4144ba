"""Derm7pt (release_v0): ``meta/meta.csv``, ``meta/{train,valid,test}_indexes.csv``, ``images/``.

The index files hold 0-based row positions into meta.csv (``df.iloc``), not ``case_num`` —
the authors' loader matches them against ``case_num`` and is off by one; we do not copy that.
Each case gives two samples, the clinical and the dermoscopic photo, with a ``modality``
field and the case as group, so both photos of a lesion stay in the same split. Image paths
are relative to ``images/`` and the extension's case varies, so paths match case-insensitively.
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
    for pos, row in enumerate(rows):
        case = row.get("case_num") or str(pos + 1)
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
                expected=f"{shown}/{rel or '<empty ' + column + ' column>'}",
            )
    return col.finish(seed=seed, check_images=check_images)
