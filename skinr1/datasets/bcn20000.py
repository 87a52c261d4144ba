"""BCN20000 (Figshare release, or the Kaggle mirror that nests each image folder once more).

``bcn_20k_train.csv`` + ``bcn_20k_train/<bcn_filename>``. The test release
(``bcn_20k_test.csv``) carries no diagnosis, so its rows are not samples; they are counted in a
note. The train CSV's ``split`` column is honoured if it names val/test rows; in the public
release every row says ``train``, and the data are split grouped by lesion, seeded 6:2:2.
"""

from __future__ import annotations

from pathlib import Path

from skinr1.datasets.base import (
    DatasetLayoutError,
    LoadResult,
    RecordCollector,
    clean,
    find_child,
    index_images,
    parse_age,
    read_table,
)

NAME = "BCN20000"
HEADER = (
    "bcn_filename",
    "age_approx",
    "anatom_site_general",
    "diagnosis",
    "lesion_id",
    "capture_date",
    "sex",
    "split",
)
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def load(root: Path, taxonomy, *, seed: int, check_images: bool = True) -> LoadResult:
    meta = find_child(root, ["bcn_20k_train.csv"])
    if meta is None:
        raise DatasetLayoutError(
            f"{root}: no bcn_20k_train.csv; expected BCN20000's bcn_20k_train.csv next to the "
            "bcn_20k_train/ image folder"
        )
    rows = read_table(meta, ["bcn_filename", "diagnosis"], HEADER)
    folders = [
        c
        for c in sorted(root.iterdir())
        if c.is_dir() and c.name.lower().startswith("bcn_20k_train")
    ]
    images = index_images(folders)
    official = {SPLIT_NAMES.get(r.get("split", "").lower()) for r in rows if r["diagnosis"]}
    use_official = None not in official and len(official) > 1
    col = RecordCollector(NAME, taxonomy)
    for row in rows:
        name = row["bcn_filename"]
        col.add(
            Path(name).stem,
            row["diagnosis"],
            images.get(name.lower()),
            split=SPLIT_NAMES.get(row.get("split", "").lower()) if use_official else None,
            group=row.get("lesion_id", ""),
            age=parse_age(row.get("age_approx")),
            sex=clean(row.get("sex")),
            site=clean(row.get("anatom_site_general")),
            expected=f"{root.name}/bcn_20k_train/{name}",
        )
    test = find_child(root, ["bcn_20k_test.csv"])
    if test is not None:
        n = len(read_table(test, ["bcn_filename"], HEADER))
        col.result.notes.append(
            f"{test.name}: {n} rows of the unlabelled test release, not samples"
        )
    return col.finish(seed=seed, check_images=check_images)
