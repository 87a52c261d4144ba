"""HAM10000 (Kaggle or Harvard Dataverse download) plus the ISIC 2018 Task 3 test set.

Metadata: ``HAM10000_metadata.csv`` (Kaggle, 7 columns) or ``HAM10000_metadata`` /
``.tab`` (Dataverse, 8 columns). Images: ``HAM10000_images_part_{1,2}/<image_id>.jpg``, folder
names matched case-insensitively. Official test split: ``ISIC2018_Task3_Test_GroundTruth.csv``,
either the challenge's one-hot file (``image,MEL,NV,...``) or Dataverse's long form
(``image_id,dx,...``), flat or inside ``ISIC2018_Task3_Test_GroundTruth/``, with images in
``ISIC2018_Task3_Test_Images/`` (Dataverse) or ``ISIC2018_Task3_Test_Input/`` (challenge).
With the test set present, val is a grouped slice of HAM10000; without it, a grouped 6:2:2.
"""

from __future__ import annotations

from pathlib import Path

from skinr1.datasets.base import (
    TRAIN_POOL,
    DatasetLayoutError,
    LoadResult,
    RecordCollector,
    clean,
    find_child,
    index_images,
    parse_age,
    read_table,
)

NAME = "HAM10000"
METADATA = ("HAM10000_metadata.csv", "HAM10000_metadata", "HAM10000_metadata.tab")
KAGGLE_HEADER = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
TEST_GT = "ISIC2018_Task3_Test_GroundTruth.csv"
TEST_IMAGES = ("ISIC2018_Task3_Test_Images", "ISIC2018_Task3_Test_Input")
ONE_HOT = ("image", "MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")


def _image_folders(root: Path, prefix: str) -> list[Path]:
    return [c for c in sorted(root.iterdir()) if c.is_dir() and c.name.lower().startswith(prefix)]


def _test_ground_truth(root: Path) -> Path | None:
    flat = find_child(root, [TEST_GT])
    if flat is not None and flat.is_file():
        return flat
    folder = find_child(root, [TEST_GT.removesuffix(".csv")])
    return find_child(folder, [TEST_GT]) if folder is not None and folder.is_dir() else None


def _one_hot_label(row: dict[str, str], codes: list[str]) -> str:
    """The single code whose column is 1; empty when none or several are (counted as empty)."""
    hot = [c for c in codes if (clean(row.get(c)) or "0") not in {"0", "0.0"}]
    return hot[0].lower() if len(hot) == 1 else ""


def load(root: Path, taxonomy, *, seed: int, check_images: bool = True) -> LoadResult:
    meta = find_child(root, METADATA)
    if meta is None or not meta.is_file():
        raise DatasetLayoutError(
            f"{root}: no HAM10000 metadata; expected {METADATA[0]} (Kaggle) or {METADATA[1]} "
            "(Dataverse) next to the HAM10000_images_part_1/ and _part_2/ folders"
        )
    rows = read_table(meta, ["image_id", "dx"], KAGGLE_HEADER)
    gt = _test_ground_truth(root)
    images = index_images(_image_folders(root, "ham10000_images"), by_stem=True)
    col = RecordCollector(NAME, taxonomy)
    pool = TRAIN_POOL if gt is not None else None
    for row in rows:
        image_id = row["image_id"]
        col.add(
            image_id,
            row["dx"],
            images.get(image_id.lower()),
            split=pool,
            group=row.get("lesion_id", ""),
            age=parse_age(row.get("age")),
            sex=clean(row.get("sex")),
            site=clean(row.get("localization")),
            expected=f"{root.name}/HAM10000_images_part_{{1,2}}/{image_id}.jpg",
        )
    if gt is None:
        col.result.notes.append(
            f"no {TEST_GT}: the ISIC 2018 Task 3 test set is absent, so test is a grouped "
            "seeded slice of HAM10000 itself"
        )
    else:
        _add_test_set(col, root, gt)
    return col.finish(seed=seed, check_images=check_images)


def _add_test_set(col: RecordCollector, root: Path, gt: Path) -> None:
    if _is_one_hot(gt):
        table = read_table(gt, ["image"], ONE_HOT)
        codes = [c for c in table[0] if c != "image"] if table else []
        rows = [{"image_id": r["image"], "dx": _one_hot_label(r, codes)} for r in table]
    else:
        rows = read_table(gt, ["image_id", "dx"], (*KAGGLE_HEADER, "dataset"))
    folder = find_child(root, TEST_IMAGES) or find_child(gt.parent, TEST_IMAGES)
    images = index_images([folder], by_stem=True) if folder is not None else {}
    shown = folder.name if folder is not None else TEST_IMAGES[0]
    for row in rows:
        image_id = row["image_id"].removesuffix(".jpg")
        col.add(
            image_id,
            row["dx"],
            images.get(image_id.lower()),
            split="test",
            group=row.get("lesion_id", ""),
            age=parse_age(row.get("age")),
            sex=clean(row.get("sex")),
            site=clean(row.get("localization")),
            expected=f"{root.name}/{shown}/{image_id}.jpg",
        )


def _is_one_hot(gt: Path) -> bool:
    with open(gt, encoding="utf-8-sig") as fh:
        first = fh.readline().replace('"', "").strip().split(",")
    return "image" in first and "image_id" not in first
