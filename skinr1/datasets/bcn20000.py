"""BCN20000: the Figshare release (or its Kaggle mirror), or the ISIC Archive's export.

Figshare: ``bcn_20k_train.csv`` + ``bcn_20k_train/<bcn_filename>`` (the Kaggle mirror nests each
image folder once more). The test release (``bcn_20k_test.csv``) carries no diagnosis, so its
rows are not samples; they are counted in a note. The train CSV's ``split`` column is honoured
if it names val/test rows; in the public release every row says ``train``, and the data are
split grouped by lesion, seeded 6:2:2.

ISIC Archive (``isic image download``): ``metadata.csv`` (``isic_id, attribution,
copyright_license``, then the fields in alphabetical order, among them ``diagnosis_1`` ..
``diagnosis_5``) with ``ISIC_NNNNNNN.jpg`` next to it or in a subfolder. The hierarchical
``diagnosis_3`` string is translated back to the release's 8 codes (``ISIC_DIAGNOSIS``), so both
exports give the same records: same raw labels, nodes, lesion groups and metadata; the ids are
the file stems. A row with no diagnosis at all is an unlabelled test image (a note); a
``diagnosis_3`` outside the table is unmapped under its own name.
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
ISIC_HEADER = (
    "isic_id",
    "attribution",
    "copyright_license",
    "age_approx",
    "anatom_site_general",
    "diagnosis_1",
    "diagnosis_2",
    "diagnosis_3",
    "diagnosis_4",
    "diagnosis_5",
    "lesion_id",
    "sex",
)
DIAGNOSES = tuple(f"diagnosis_{i}" for i in range(1, 6))
# ISIC Archive level-3 diagnosis -> BCN20000 release code (datasets.md §3 (b), §9). A format
# translation, not knowledge: the codes then map to nodes through knowledge/datasets.yaml as
# the Figshare release's do.
ISIC_DIAGNOSIS = {
    "Nevus": "NV",
    "Melanoma, NOS": "MEL",
    "Melanoma metastasis": "MEL",
    "Melanoma Invasive": "MEL",
    "Melanoma in situ": "MEL",
    "Seborrheic keratosis": "BKL",
    "Solar lentigo": "BKL",
    "Pigmented benign keratosis": "BKL",
    "Lichen planus like keratosis": "BKL",
    "Basal cell carcinoma": "BCC",
    "Solar or actinic keratosis": "AK",
    "Squamous cell carcinoma, NOS": "SCC",
    "Squamous cell carcinoma in situ": "SCC",
    "Squamous cell carcinoma, Invasive": "SCC",
    "Squamous cell carcinoma Invasive": "SCC",
    "Dermatofibroma": "DF",
    "Scar": "DF",
    # Assumption: no BCN20000 VASC record was seen in the archive; these are the ISIC level-3
    # vascular strings (Benign soft tissue proliferations - Vascular) a VASC image would carry.
    "Hemangioma": "VASC",
    "Pyogenic granuloma": "VASC",
    "Angioma": "VASC",
    "Angiokeratoma": "VASC",
    "Hemorrhage": "VASC",
}
_ISIC_LOOKUP = {" ".join(k.lower().split()): v for k, v in ISIC_DIAGNOSIS.items()}
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def _variant(path: Path) -> str:
    """ "figshare" or "isic" from the header; DatasetLayoutError naming both headers otherwise."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    header = {h.strip().strip('"') for h in first.strip().split(delimiter)} - {""}
    if {"bcn_filename", "diagnosis"} <= header:
        return "figshare"
    if {"isic_id", "diagnosis_3"} <= header:
        return "isic"
    raise DatasetLayoutError(
        f"{path}: header {sorted(header)} is neither BCN20000 export; expected the Figshare "
        f"release's {','.join(HEADER)} (bcn_20k_train.csv) or the ISIC Archive's "
        f"{','.join(ISIC_HEADER)},... (metadata.csv from `isic image download`)"
    )


def isic_code(row: dict[str, str]) -> str:
    """The release code of an ISIC Archive row; the diagnosis_3 string itself when it is not
    in ``ISIC_DIAGNOSIS`` (so it is counted as unmapped by name); "" when unlabelled."""
    level3 = row.get("diagnosis_3", "").strip()
    if not level3:
        deepest = [row[c] for c in DIAGNOSES if row.get(c, "").strip()]
        return deepest[-1] if deepest else ""
    return _ISIC_LOOKUP.get(" ".join(level3.lower().split()), level3)


def _load_isic(root: Path, meta: Path, taxonomy, *, seed: int, check_images: bool) -> LoadResult:
    rows = read_table(meta, ["isic_id", "diagnosis_3"], ISIC_HEADER)
    images = index_images([root], by_stem=True)
    col = RecordCollector(NAME, taxonomy)
    unlabelled = 0
    for row in rows:
        isic_id = row["isic_id"]
        code = isic_code(row)
        if not code:
            unlabelled += 1
            continue
        col.add(
            isic_id,
            code,
            images.get(isic_id.lower()),
            group=row.get("lesion_id", ""),
            age=parse_age(row.get("age_approx")),
            sex=clean(row.get("sex")),
            site=clean(row.get("anatom_site_general")),
            expected=f"{root.name}/{isic_id}.jpg",
        )
    if unlabelled:
        col.result.notes.append(
            f"{meta.name}: {unlabelled} rows without a diagnosis (the unlabelled test images), "
            "not samples"
        )
    return col.finish(seed=seed, check_images=check_images)


def load(root: Path, taxonomy, *, seed: int, check_images: bool = True) -> LoadResult:
    meta = find_child(root, ["bcn_20k_train.csv"])
    if meta is None:
        isic = find_child(root, ["metadata.csv"])
        if isic is not None and isic.is_file() and _variant(isic) == "isic":
            return _load_isic(root, isic, taxonomy, seed=seed, check_images=check_images)
        raise DatasetLayoutError(
            f"{root}: no bcn_20k_train.csv or metadata.csv; expected BCN20000's "
            "bcn_20k_train.csv next to the bcn_20k_train/ image folder (Figshare), or the ISIC "
            "Archive's metadata.csv next to its ISIC_*.jpg images"
        )
    _variant(meta)
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
