"""DermNet (Kaggle ``shubhamgoel27/dermnet``): ``{train,test}/<one of 23 folders>/*.jpg``.

The 23 folders are mixed categories, so the diagnosis comes from the file name where it
follows ``name-parts-<digits>.jpg`` (hyphens become spaces: ``basal-cell-carcinoma-face-12``
-> "basal cell carcinoma face"), as in the authors' code. Other names (``07Acne081101.jpg``)
name no diagnosis; the authors skip them, we give them the folder name as raw label so they
are counted (and unmapped unless the knowledge base maps that folder). Official train/test;
val is a seeded slice of train. Clinical photos; no patient key, so each image is its own group.

A file-name diagnosis resolves through the label map first, then through the taxonomy's names
and synonyms in any word order, singular or plural, with site and view words left over
(``datasets/names.py``); a folder label only through the label map ("folder"). How each label
resolved is in ``LoadResult.resolved``; a name that matches two nodes equally is in ``ambiguous``.
"""

from __future__ import annotations

import re
from pathlib import Path

from skinr1.datasets.base import (
    IMAGE_SUFFIXES,
    TRAIN_POOL,
    DatasetLayoutError,
    LoadResult,
    RecordCollector,
    find_child,
    find_nested,
)
from skinr1.datasets.names import NameResolver, Resolution

NAME = "dermnet"
FOLDERS = (
    "Acne and Rosacea Photos",
    "Actinic Keratosis Basal Cell Carcinoma and other Malignant Lesions",
    "Atopic Dermatitis Photos",
    "Bullous Disease Photos",
    "Cellulitis Impetigo and other Bacterial Infections",
    "Eczema Photos",
    "Exanthems and Drug Eruptions",
    "Hair Loss Photos Alopecia and other Hair Diseases",
    "Herpes HPV and other STDs Photos",
    "Light Diseases and Disorders of Pigmentation",
    "Lupus and other Connective Tissue diseases",
    "Melanoma Skin Cancer Nevi and Moles",
    "Nail Fungus and other Nail Disease",
    "Poison Ivy Photos and other Contact Dermatitis",
    "Psoriasis pictures Lichen Planus and related diseases",
    "Scabies Lyme Disease and other Infestations and Bites",
    "Seborrheic Keratoses and other Benign Tumors",
    "Systemic Disease",
    "Tinea Ringworm Candidiasis and other Fungal Infections",
    "Urticaria Hives",
    "Vascular Tumors",
    "Vasculitis Photos",
    "Warts Molluscum and other Viral Infections",
)
FINE_NAME = re.compile(r"^([a-z0-9]+(?:-[a-z0-9]+)*)-\d+$", re.IGNORECASE)


def fine_diagnosis(file_name: str) -> str | None:
    """ "basal cell carcinoma face" for ``basal-cell-carcinoma-face-12.jpg``; None otherwise."""
    m = FINE_NAME.match(Path(file_name).stem)
    return m.group(1).replace("-", " ").lower() if m else None


def load(root: Path, taxonomy, *, seed: int, check_images: bool = True) -> LoadResult:
    base = find_nested(root, ["train", "test"])
    if base is None:
        raise DatasetLayoutError(
            f"{root}: no train/ or test/ folder; expected the Kaggle DermNet layout "
            "train/<class folder>/*.jpg and test/<class folder>/*.jpg"
        )
    names = NameResolver(taxonomy, NAME)
    folder_labels: set[str] = set()

    def resolve(raw: str) -> Resolution:
        if raw in folder_labels:  # a mixed-category folder is never matched by its words
            node = names.explicit(raw)
            return Resolution(node, "folder" if node is not None else None)
        return names(raw)

    col = RecordCollector(NAME, taxonomy, resolve)
    n_coarse = 0
    for part, split in (("train", TRAIN_POOL), ("test", "test")):
        folder = find_child(base, [part])
        if folder is None or not folder.is_dir():
            col.result.notes.append(f"no {part}/ folder")
            continue
        for cls in sorted(c for c in folder.iterdir() if c.is_dir()):
            for img in sorted(cls.rglob("*")):
                if img.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                fine = fine_diagnosis(img.name)
                n_coarse += fine is None
                if fine is None:
                    folder_labels.add(cls.name)
                col.add(
                    f"{part}/{cls.name}/{img.stem}",
                    fine or cls.name,
                    img,
                    split=split,
                    modality="clinical",
                )
    if n_coarse:
        col.result.notes.append(
            f"{n_coarse} file names name no diagnosis (not name-parts-<digits>.jpg); their raw "
            "label is the class folder"
        )
    return col.finish(seed=seed, check_images=check_images)
