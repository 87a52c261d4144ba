"""PAD-UFES-20 (Mendeley release): ``metadata.csv`` plus PNGs anywhere below ``images/``.

The zips unpack as ``images/imgs_part_N/imgs_part_N/PAT_<patient>_<lesion>_<n>.png``, so images
are indexed by file name (``img_id`` already carries ``.png``). Smartphone photos, hence
``modality = "clinical"``. No official split: grouped by patient, seeded 6:2:2.

The (misspelt) ``fitspatrick`` column gives ``skin_type``: floats such as ``3.0``; empty in the
sparse rows without a questionnaire, sometimes ``UNK``. A value that is not a whole number in
1-6 leaves ``skin_type`` None and is counted in ``LoadResult.unannotated``.
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
    parse_skin_type,
    read_table,
    unannotated_key,
)

NAME = "PAD-UFES-20"
HEADER = (
    "patient_id",
    "lesion_id",
    "smoke",
    "drink",
    "background_father",
    "background_mother",
    "age",
    "pesticide",
    "gender",
    "skin_cancer_history",
    "cancer_history",
    "has_piped_water",
    "has_sewage_system",
    "fitspatrick",
    "region",
    "diameter_1",
    "diameter_2",
    "diagnostic",
    "itch",
    "grew",
    "hurt",
    "changed",
    "bleed",
    "elevation",
    "img_id",
    "biopsed",
)


def load(root: Path, taxonomy, *, seed: int, check_images: bool = True) -> LoadResult:
    meta = find_child(root, ["metadata.csv"])
    if meta is None:
        raise DatasetLayoutError(
            f"{root}: no metadata.csv; expected PAD-UFES-20's metadata.csv next to images/"
        )
    rows = read_table(meta, ["patient_id", "diagnostic", "img_id"], HEADER)
    folder = find_child(root, ["images"])
    images = index_images([folder] if folder is not None else [root])
    col = RecordCollector(NAME, taxonomy)
    for row in rows:
        img = row["img_id"]
        sex = clean(row.get("gender"))
        site = clean(row.get("region"))
        skin_type = parse_skin_type(row.get("fitspatrick"))
        if skin_type is None:
            col.result.unannotated[unannotated_key("fitspatrick", row.get("fitspatrick"))] += 1
        col.add(
            img.removesuffix(".png"),
            row["diagnostic"],
            images.get(img.lower()),
            group=row["patient_id"],
            modality="clinical",
            age=parse_age(row.get("age")),
            sex=sex.lower() if sex else None,
            site=site.lower() if site else None,
            skin_type=skin_type,
            expected=f"{root.name}/images/imgs_part_*/{img}",
        )
    return col.finish(seed=seed, check_images=check_images)
