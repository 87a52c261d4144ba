"""DERM12345 (Kaggle ``.csv`` or Harvard Dataverse ``.tab`` metadata).

Metadata: ``derm12345_metadata_{train,test}`` as ``.csv`` or as Dataverse's tab-separated
``.tab`` (UTF-8 byte-order mark, quoted values). Images: ``derm12345_train_part_{1,2}/<label>/
<image_id>.jpg`` — label folders are spread over both parts — and ``derm12345_test/<label>/``.
The raw label is the 40-way leaf code in ``label``. Official train/test; val is a grouped
(by patient) seeded slice of train.
"""

from __future__ import annotations

from pathlib import Path

from skinr1.datasets.base import (
    TRAIN_POOL,
    DatasetLayoutError,
    LoadResult,
    RecordCollector,
    find_child,
    index_images,
    read_table,
)

NAME = "derm12345"
HEADER = (
    "image_id",
    "patient_id",
    "split",
    "super_class",
    "malignancy",
    "main_class_1",
    "main_class_2",
    "sub_class",
    "label",
)


def _metadata(root: Path, part: str) -> Path:
    stem = f"derm12345_metadata_{part}"
    hit = find_child(root, [f"{stem}.csv", f"{stem}.tab", stem])
    if hit is None or not hit.is_file():
        raise DatasetLayoutError(
            f"{root}: no {stem}.csv (Kaggle) or {stem}.tab (Dataverse); expected DERM12345's "
            f"metadata files next to the derm12345_train_part_1/, _part_2/ and derm12345_test/ "
            "image folders"
        )
    return hit


def load(root: Path, taxonomy, *, seed: int, check_images: bool = True) -> LoadResult:
    col = RecordCollector(NAME, taxonomy)
    for part, split, prefix in (
        ("train", TRAIN_POOL, "derm12345_train"),
        ("test", "test", "derm12345_test"),
    ):
        rows = read_table(_metadata(root, part), ["image_id", "label"], HEADER)
        folders = [
            c for c in sorted(root.iterdir()) if c.is_dir() and c.name.lower().startswith(prefix)
        ]
        images = index_images(folders, by_stem=True)
        for row in rows:
            image_id, label = row["image_id"].removesuffix(".jpg"), row["label"]
            col.add(
                image_id,
                label,
                images.get(image_id.lower()),
                split=split,
                group=row.get("patient_id", ""),
                expected=f"{root.name}/{prefix}*/{label or '?'}/{image_id}.jpg",
            )
    return col.finish(seed=seed, check_images=check_images)
