"""The embedded demo data: all seven datasets in their real on-disk layouts, scaled down.

``python -m skinr1 demo-data --root DIR --seed N --scale X --image-size N`` writes HAM10000/,
PAD-UFES-20/, BCN20000/, derm12345/, derm7pt/, dermnet/, OmniMedVQA/ and textbook/ under DIR,
each with the real file names, headers, quoting, folder nesting and file-name patterns
(as the loaders in ``skinr1/datasets/`` document them), so the pipeline reads
demo and real downloads through the same loaders. Images come from ``skinr1.embedded.lesions.render``
with the features of the node a raw label maps to, so a label and its picture agree.

Class balance follows the real datasets' label counts, with a floor per label so rare classes
appear. Every random choice derives from the seed: metadata from ``random.Random`` streams
named per dataset, pixels from one numpy stream per image, keyed by (seed, dataset, index) —
textbook images use their own stream and ids, so they never repeat a dataset image.

Every image is drawn on a Fitzpatrick tone, but, as in the real data, only PAD-UFES-20's
metadata says which. The tones of all images (every dataset, OmniMedVQA and the textbook) go to
a sidecar at the root, ``annotations.csv`` (``image,fitzpatrick``, paths relative to the root;
``skinr1.datasets.annotations``), so that fairness by skin type can be measured on the demo.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import inspect
import io
import json
import os
import random
import shutil
import zlib
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from skinr1.datasets import bcn20000, derm7pt, derm12345, pad_ufes20
from skinr1.datasets.annotations import ANNOTATIONS, write_annotations
from skinr1.rules import Features
from skinr1.taxonomy import KnowledgeError

DEMO_VERSION = 3  # 3: annotations.csv (a root of an earlier version is regenerated)
MARKER = ".demo-complete.json"

# Per-image numpy streams: (seed, STREAM[dataset], index) never collide across datasets.
STREAM = {
    "HAM10000": 1,
    "PAD-UFES-20": 2,
    "BCN20000": 3,
    "derm12345": 4,
    "derm7pt": 5,
    "dermnet": 6,
    "OmniMedVQA": 7,
    "textbook": 8,
}

# Fitzpatrick I..VI shares: dermoscopy archives are mostly light skin; PAD-UFES-20 (Brazil)
# and DermNet (an atlas) are more varied. Every type still appears once a set has 12 images.
TONES_LIGHT = (0.30, 0.35, 0.18, 0.09, 0.05, 0.03)
TONES_VARIED = (0.15, 0.30, 0.25, 0.15, 0.10, 0.05)

# Raw label -> (real count in the dataset, a taxonomy name to draw it by when the knowledge
# base has no map for the label yet). Counts from datasets.md; [U] marks estimates.
HAM_DX = {
    "nv": (6705, "melanocytic nevus"), "mel": (1113, "melanoma"),
    "bkl": (1099, "benign keratosis-like lesion"), "bcc": (514, "basal cell carcinoma"),
    "akiec": (327, "actinic keratosis"), "vasc": (142, "vascular lesion"),
    "df": (115, "dermatofibroma"),
}  # fmt: skip
PAD_DX = {
    "BCC": (845, "basal cell carcinoma"), "ACK": (730, "actinic keratosis"),
    "NEV": (244, "melanocytic nevus"), "SEK": (235, "seborrheic keratosis"),
    "SCC": (192, "squamous cell carcinoma"), "MEL": (52, "melanoma"),
}  # fmt: skip
BCN_DX = {
    "NV": (4206, "melanocytic nevus"), "MEL": (2857, "melanoma"),
    "BCC": (2809, "basal cell carcinoma"), "BKL": (1138, "benign keratosis-like lesion"),
    "AK": (737, "actinic keratosis"), "SCC": (431, "squamous cell carcinoma"),
    "DF": (124, "dermatofibroma"), "VASC": (111, "vascular lesion"),
}  # fmt: skip
# DERM12345: code -> (super_class, malignancy, main_class_1, main_class_2, sub_class, count,
# hint). Family counts (melanoma 400, scc 266, bd 37, ch 12, bcc 423, sk 607) are real; the
# split of the ~10k nevi and the rare classes is an estimate [U], as are the sub_class strings
# of the nevus codes.
_MB = ("melanocytic", "benign")
_MM = ("melanocytic", "malignant")
_NB = ("nonmelanocytic", "benign")
_NI = ("nonmelanocytic", "indeterminate")
_NM = ("nonmelanocytic", "malignant")
DERM12345 = {
    "acb": (*_MB, "banal", "compound", "acral_compound", 400, "melanocytic nevus"),
    "cb": (*_MB, "banal", "compound", "compound", 2000, "melanocytic nevus"),
    "ccb": (*_MB, "banal", "compound", "congenital_compound", 300, "melanocytic nevus"),
    "mcb": (*_MB, "banal", "compound", "miescher", 300, "melanocytic nevus"),
    "bdb": (*_MB, "banal", "dermal", "blue", 250, "melanocytic nevus"),
    "db": (*_MB, "banal", "dermal", "dermal", 800, "melanocytic nevus"),
    "ajb": (*_MB, "banal", "junctional", "acral_junctional", 600, "melanocytic nevus"),
    "cjb": (*_MB, "banal", "junctional", "congenital_junctional", 250, "melanocytic nevus"),
    "jb": (*_MB, "banal", "junctional", "junctional", 1500, "melanocytic nevus"),
    "acd": (*_MB, "dysplastic", "compound", "acral_dysplastic_compound", 200, "melanocytic nevus"),
    "cd": (*_MB, "dysplastic", "compound", "dysplastic_compound", 900, "melanocytic nevus"),
    "ccd": (
        *_MB,
        "dysplastic",
        "compound",
        "congenital_dysplastic_compound",
        150,
        "melanocytic nevus",
    ),
    "ajd": (
        *_MB,
        "dysplastic",
        "junctional",
        "acral_dysplastic_junctional",
        150,
        "melanocytic nevus",
    ),
    "jd": (*_MB, "dysplastic", "junctional", "dysplastic_junctional", 900, "melanocytic nevus"),
    "srjd": (*_MB, "dysplastic", "junctional", "spitz_reed", 150, "melanocytic nevus"),
    "rd": (*_MB, "dysplastic", "recurrent", "recurrent", 30, "melanocytic nevus"),
    "isl": (*_MB, "lentigo", "lentigo", "ink_spot_lentigo", 60, "solar lentigo"),
    "ls": (*_MB, "lentigo", "lentigo", "lentigo_simplex", 200, "solar lentigo"),
    "sl": (*_MB, "lentigo", "lentigo", "solar_lentigo", 300, "solar lentigo"),
    "alm": (*_MM, "melanoma", "melanoma", "acral_lentiginious", 80, "melanoma"),
    "anm": (*_MM, "melanoma", "melanoma", "acral_nodular", 20, "melanoma"),
    "lm": (*_MM, "melanoma", "melanoma", "lentigo_maligna", 80, "melanoma"),
    "lmm": (*_MM, "melanoma", "melanoma", "lentigo_maligna_melanoma", 40, "melanoma"),
    "mel": (*_MM, "melanoma", "melanoma", "melanoma", 180, "melanoma"),
    "sk": (
        *_NB,
        "keratinocytic",
        "keratinocytic",
        "seborrheic_keratosis",
        607,
        "seborrheic keratosis",
    ),
    "lk": (
        *_NB,
        "keratinocytic",
        "keratinocytic",
        "lichenoid_keratosis",
        100,
        "benign keratosis-like lesion",
    ),
    "df": (*_NB, "fibro_histiocytic", "fibro_histiocytic", "dermatofibroma", 250, "dermatofibroma"),
    "angk": (*_NB, "vascular", "vascular", "angiokeratoma", 80, "vascular lesion"),
    "ha": (*_NB, "vascular", "vascular", "hemangioma", 250, "vascular lesion"),
    "la": (*_NB, "vascular", "vascular", "lymphangioma", 30, "vascular lesion"),
    "pg": (*_NB, "vascular", "vascular", "pyogenic_granuloma", 30, "vascular lesion"),
    "sa": (*_NB, "vascular", "vascular", "spider_angioma", 30, "vascular lesion"),
    "ak": (*_NI, "keratinocytic", "keratinocytic", "actinic_keratosis", 300, "actinic keratosis"),
    "bcc": (
        *_NM,
        "keratinocytic",
        "keratinocytic",
        "basal_cell_carcinoma",
        423,
        "basal cell carcinoma",
    ),
    "bd": (*_NM, "keratinocytic", "keratinocytic", "bowen_disease", 37, "squamous cell carcinoma"),
    "ch": (*_NM, "keratinocytic", "keratinocytic", "cutaneous_horn", 12, "actinic keratosis"),
    "mpd": (
        *_NM,
        "keratinocytic",
        "keratinocytic",
        "mammary_paget_disease",
        10,
        "squamous cell carcinoma",
    ),
    "scc": (
        *_NM,
        "keratinocytic",
        "keratinocytic",
        "squamous_cell_carcinoma",
        266,
        "squamous cell carcinoma",
    ),
    "dfsp": (
        *_NM,
        "fibro_histiocytic",
        "fibro_histiocytic",
        "dermatofibrosarcoma_protuberans",
        10,
        "dermatofibroma",
    ),
    "ks": (*_NM, "vascular", "vascular", "kaposi_sarcoma", 10, "vascular lesion"),
}
# Derm7pt diagnosis strings; per-diagnosis counts are estimates [U] summing to about 1011.
DERM7PT_DX = {
    "clark nevus": (399, "melanocytic nevus"),
    "melanoma (less than 0.76 mm)": (102, "melanoma"),
    "reed or spitz nevus": (79, "melanocytic nevus"),
    "melanoma (in situ)": (64, "melanoma"),
    "melanoma (0.76 to 1.5 mm)": (53, "melanoma"),
    "seborrheic keratosis": (45, "seborrheic keratosis"),
    "basal cell carcinoma": (42, "basal cell carcinoma"),
    "dermal nevus": (33, "melanocytic nevus"),
    "vascular lesion": (29, "vascular lesion"),
    "blue nevus": (28, "melanocytic nevus"),
    "melanoma (more than 1.5 mm)": (28, "melanoma"),
    "lentigo": (24, "solar lentigo"),
    "dermatofibroma": (20, "dermatofibroma"),
    "congenital nevus": (17, "melanocytic nevus"),
    "melanosis": (16, "solar lentigo"),
    "combined nevus": (13, "melanocytic nevus"),
    "miscellaneous": (8, None),
    "recurrent nevus": (6, "melanocytic nevus"),
    "melanoma metastasis": (4, "melanoma"),
    "melanoma": (3, "melanoma"),
}
# DermNet: (class folder, file-name stem, weight, hint). In scope: skin cancers and their
# look-alikes (the ~20% the paper keeps); out of scope: the long tail it filtered out, plus
# file names without the name-parts-<digits> pattern. Weights are estimates [U].
_AK = "Actinic Keratosis Basal Cell Carcinoma and other Malignant Lesions"
_MEL = "Melanoma Skin Cancer Nevi and Moles"
_SEB = "Seborrheic Keratoses and other Benign Tumors"
_VAS = "Vascular Tumors"
DERMNET_IN = (
    (_AK, "actinic-keratosis", 6, "actinic keratosis"),
    (_AK, "basal-cell-carcinoma", 5, "basal cell carcinoma"),
    (_AK, "basal-cell-carcinoma-face", 2, "basal cell carcinoma"),
    (_AK, "squamous-cell-carcinoma", 4, "squamous cell carcinoma"),
    (_AK, "bowens-disease", 2, "squamous cell carcinoma"),
    (_MEL, "malignant-melanoma", 5, "melanoma"),
    (_MEL, "lentigo-maligna", 2, "melanoma"),
    (_MEL, "atypical-nevi", 4, "melanocytic nevus"),
    (_MEL, "blue-nevus", 2, "melanocytic nevus"),
    (_SEB, "seborrheic-keratosis", 6, "seborrheic keratosis"),
    (_SEB, "dermatofibroma", 3, "dermatofibroma"),
    (_VAS, "hemangioma", 3, "vascular lesion"),
    (_VAS, "pyogenic-granuloma", 2, "vascular lesion"),
    (_VAS, "cherry-angioma", 2, "vascular lesion"),
    ("Light Diseases and Disorders of Pigmentation", "lentigo-adults", 2, "solar lentigo"),
)
DERMNET_OUT = (
    ("Acne and Rosacea Photos", "acne-vulgaris", 4),
    ("Acne and Rosacea Photos", "rosacea", 3),
    ("Psoriasis pictures Lichen Planus and related diseases", "psoriasis-plaque", 4),
    ("Psoriasis pictures Lichen Planus and related diseases", "lichen-planus", 3),
    ("Eczema Photos", "eczema-hand", 3),
    ("Tinea Ringworm Candidiasis and other Fungal Infections", "tinea-corporis", 3),
    ("Warts Molluscum and other Viral Infections", "molluscum-contagiosum", 3),
    ("Urticaria Hives", "urticaria", 2),
)
# File names the authors' regex skips (real examples); they stay in their class folders.
DERMNET_PLAIN = (
    ("Acne and Rosacea Photos", "07Acne081101"),
    ("Eczema Photos", "03EczemaExcoriated"),
    ("Acne and Rosacea Photos", "07PerioralDermEye"),
)
# OmniMedVQA dermoscopy subset: Disease Diagnosis items per source (paper, Table 7) and the
# answers they use, with real class weights where known. Answer strings are [U].
OMNI_SOURCES = {
    "ISIC2019": (
        1637,
        "Images/ISIC2019/train",
        {
            "Melanocytic nevus": 12875,
            "Melanoma": 4522,
            "Basal cell carcinoma": 3323,
            "Benign keratosis": 2624,
            "Actinic keratosis": 867,
            "Squamous cell carcinoma": 628,
            "Vascular lesion": 253,
            "Dermatofibroma": 239,
        },
    ),
    # ISIC2020 and ISBI2016 ask benign vs malignant (answers that name no diagnosis node).
    "ISIC2020": (1212, "Images/ISIC2020/train", {"Benign image": 32542, "Malignant image": 584}),
    "ISBI2016": (
        476,
        "Images/ISBI2016/ISBI2016_ISIC_Part3_Training_Data",
        {"Benign": 727, "Malignant": 173},
    ),
    "ISIC2018": (
        173,
        "Images/ISIC2018/val",
        {
            "Melanocytic nevi": 123,
            "Melanoma": 21,
            "Benign keratosis": 22,
            "Basal cell carcinoma": 15,
            "Actinic keratoses": 8,
            "Vascular lesions": 3,
            "Dermatofibroma": 1,
        },
    ),
    "Monkeypox Skin Image 2022": (
        154,
        "Images/Monkeypox Skin Image 2022",
        {"Monkeypox": 279, "Chickenpox": 107, "Measles": 91, "Normal": 293},
    ),
}
OMNI_EXCLUDED = {"Fitzpatrick 17k": 1287, "PAD-UFES-20": 387}
OMNI_HINTS = {
    "melanocytic nevi": "melanocytic nevus",
    "benign keratosis": "benign keratosis-like lesion",
    "benign": "melanocytic nevus",
    "benign image": "melanocytic nevus",
    "malignant": "melanoma",
    "malignant image": "melanoma",
}
# Drawn for labels outside the taxonomy (inflammatory and infectious look-alikes), picked by
# label so one label always looks the same.
OUT_OF_SCOPE_LOOKS = (
    Features(
        border="ill-defined", colours=("pink", "red"), structures=("scale",), surface=("scaly",)
    ),
    Features(
        elevation="raised", colours=("red", "yellow"), structures=("crust",), surface=("crusted",)
    ),
    Features(
        border="ill-defined",
        size="large",
        colours=("pink",),
        structures=("dotted vessels",),
        surface=("smooth",),
    ),
    Features(
        elevation="raised", size="small", colours=("skin-coloured", "white"), surface=("shiny",)
    ),
)
SCALE_COUNTS = {  # targets at scale 1.0
    "HAM10000": 200,
    "HAM10000_test": 50,
    "PAD-UFES-20": 80,
    "BCN20000": 120,
    "BCN20000_test": 6,
    "derm12345": 120,
    "derm7pt": 40,
    "dermnet_in": 50,
    "dermnet_out": 30,
    "OmniMedVQA": 60,
}
# SkinRationale's exemplars per diagnosis, at scale 1 (params.yaml demo.textbook overrides): each
# HAM10000 class, each of their DDx neighbours, every other label of the RL datasets (subtypes).
TEXTBOOK_COUNTS = {"per_class": 32, "per_neighbour": 4, "per_label": 2}


# --- small helpers ---------------------------------------------------------------------------
def allocate(weights: dict[str, float], total: int, floor: int) -> dict[str, int]:
    """Counts per key: ``floor`` each, the rest in proportion (largest remainder)."""
    keys = list(weights)
    rest = max(total - floor * len(keys), 0)
    mass = sum(weights.values())
    exact = {k: rest * weights[k] / mass for k in keys}
    counts = {k: floor + int(exact[k]) for k in keys}
    left = floor * len(keys) + rest - sum(counts.values())
    for k in sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), keys.index(k)))[:left]:
        counts[k] += 1
    return counts


def _tones(n: int, weights: tuple[float, ...], rng: random.Random) -> list[int]:
    counts = allocate(
        {str(t): w for t, w in zip(range(1, 7), weights, strict=True)}, n, 1 if n >= 12 else 0
    )
    out = [int(t) for t, c in counts.items() for _ in range(c)]
    rng.shuffle(out)
    return out


def _write_csv(path: Path, header: list[str] | tuple[str, ...], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _num(x: float | None) -> str:
    return "" if x is None else f"{float(x):.1f}"


class _Painter:
    """Draws and saves every image of one dataset from per-image numpy streams."""

    def __init__(self, ctx: _Context, dataset: str) -> None:
        self.ctx, self.dataset, self.count = ctx, dataset, 0

    def features(self, raw: str, hint: str | None) -> Features:
        node = self.ctx.node_for(self.dataset, raw, hint)
        if node is not None:
            try:
                return self.ctx.rules.rule_for(node, self.ctx.taxonomy).features
            except KeyError:
                pass
        return OUT_OF_SCOPE_LOOKS[zlib.crc32(raw.encode()) % len(OUT_OF_SCOPE_LOOKS)]

    def draw(self, path: Path, feats: Features, tone: int, modality: str = "dermoscopic") -> None:
        rng = np.random.default_rng([self.ctx.seed, STREAM[self.dataset], self.count])
        self.count += 1
        self.ctx.tones[Path(path)] = tone  # for annotations.csv
        img = self.ctx.render(
            feats, rng, size=self.ctx.image_size, skin_tone=tone, modality=modality
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".png":
            img.save(path, format="PNG")
        else:
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="JPEG", quality=90)
            path.write_bytes(buf.getvalue())


class _Context:
    def __init__(
        self,
        taxonomy,
        rules,
        seed: int,
        scale: float,
        image_size: int,
        render: Callable,
        test_scale: float = 1.0,
        textbook: dict[str, int] | None = None,
    ) -> None:
        self.taxonomy, self.rules, self.seed = taxonomy, rules, seed
        self.scale, self.image_size, self.render = scale, image_size, render
        self.test_scale = test_scale
        self.textbook = dict(TEXTBOOK_COUNTS if textbook is None else textbook)
        self.floor = 3 if scale >= 0.5 else 1
        self.tones: dict[Path, int] = {}  # every drawn image -> its Fitzpatrick tone

    def n(self, key: str) -> int:
        return max(1, round(SCALE_COUNTS[key] * self.scale))

    def n_with_test(self, key: str, test_share: float) -> int:
        """The count of a dataset whose official test part (``test_share`` of it at
        test_scale 1) is enlarged ``test_scale`` times while its other parts stay as large."""
        return max(1, round(self.n(key) * (1 - test_share + test_share * self.test_scale)))

    def test_fraction(self, test_share: float) -> float:
        """The test part's share of a dataset counted by ``n_with_test``."""
        big = test_share * self.test_scale
        return big / (1 - test_share + big)

    def rng(self, name: str) -> random.Random:
        return random.Random(f"demo:{self.seed}:{name}")

    def node_for(self, dataset: str, raw: str, hint: str | None) -> str | None:
        try:
            node = self.taxonomy.map_label(dataset, raw)
        except KeyError:
            node = None
        if node is None and hint is not None:
            node = self.taxonomy.resolve(hint)
        return node


def official_cut(labels: list[str], fractions: dict[str, float], rng: random.Random) -> list[str]:
    """An "official" split for a demo dataset: exact overall proportions, each label spread.

    Systematic stratified sampling: each label's items get evenly spaced keys in [0, 1) at a
    random offset, and the items, sorted by key, are cut at the cumulative fractions.
    """
    keys = [0.0] * len(labels)
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    for lab in sorted(by_label):
        members = by_label[lab]
        rng.shuffle(members)
        offset = rng.random()
        for j, i in enumerate(members):
            keys[i] = (j + offset) / len(members)
    order = sorted(range(len(labels)), key=lambda i: (keys[i], i))
    total, cum, bounds = sum(fractions.values()), 0.0, []
    for name, f in fractions.items():
        cum += f / total
        bounds.append((round(cum * len(labels)), name))
    out = [""] * len(labels)
    for rank, i in enumerate(order):
        out[i] = next(name for bound, name in bounds if rank < bound)
    return out


def _expand(
    counts: dict[str, int], rng: random.Random, max_group: int = 3, p_single: float = 0.7
) -> list[tuple[str, int]]:
    """(label, group size) units: most lesions have one image, some two or three."""
    units = []
    for label, n in counts.items():
        while n > 0:
            k = 1 if rng.random() < p_single else rng.randint(2, max_group)
            k = min(k, n)
            units.append((label, k))
            n -= k
    rng.shuffle(units)
    return units


# --- the datasets ----------------------------------------------------------------------------
HAM_SITES = (
    "back",
    "lower extremity",
    "trunk",
    "upper extremity",
    "abdomen",
    "face",
    "chest",
    "foot",
    "neck",
    "scalp",
    "hand",
    "ear",
    "genital",
    "acral",
    "unknown",
)
HAM_SOURCES = ("vidir_molemax", "vidir_modern", "rosendahl", "vienna_dias")


def _ham_rows(ctx, paint, counts, ids, lesion_ids, rng, tones, folder_of) -> list[list[str]]:
    rows = []
    units = _expand(counts, rng)
    it_ids, it_les, it_tone = iter(ids), iter(lesion_ids), iter(tones)
    for dx, k in units:
        lesion = next(it_les)
        age = None if rng.random() < 0.01 else float(rng.choice(range(5, 90, 5)))
        sex = rng.choices(("male", "female", "unknown"), (0.54, 0.45, 0.01))[0]
        site = rng.choice(HAM_SITES)
        source = rng.choices(HAM_SOURCES, (3954, 3363, 2259, 439))[0]
        dx_type = (
            "histo"
            if dx in {"mel", "bcc", "akiec"} or rng.random() < 0.4
            else rng.choice(("follow_up", "consensus"))
            if dx == "nv"
            else "consensus"
        )
        feats = paint.features(dx, HAM_DX[dx][1])
        for _ in range(k):
            image_id = next(it_ids)
            paint.draw(folder_of(image_id) / f"{image_id}.jpg", feats, next(it_tone))
            rows.append([lesion, image_id, dx, dx_type, _num(age), sex, site, source])
    return rows


def write_ham10000(ctx: _Context, root: Path) -> dict:
    """Dataverse layout as the authors' code reads it: ``HAM10000_metadata`` (no extension,
    8 columns), two image parts, and the ISIC 2018 Task 3 test set in its long form."""
    rng, paint = ctx.rng("HAM10000"), _Painter(ctx, "HAM10000")
    weights = {k: v[0] for k, v in HAM_DX.items()}
    n = ctx.n("HAM10000")
    n_test = max(1, round(ctx.n("HAM10000_test") * ctx.test_scale))
    counts = allocate(weights, n, ctx.floor)
    test_counts = allocate(weights, n_test, 1 if ctx.scale >= 0.5 else 0)
    ids = [f"ISIC_{i:07d}" for i in sorted(rng.sample(range(24306, 34321), sum(counts.values())))]
    order = list(ids)
    rng.shuffle(order)
    half = ids[len(ids) // 2]
    part = {True: root / "HAM10000_images_part_1", False: root / "HAM10000_images_part_2"}
    lesions = [f"HAM_{i:07d}" for i in rng.sample(range(0, 7470), len(ids))]
    tones = _tones(len(ids), TONES_LIGHT, rng)
    rows = _ham_rows(ctx, paint, counts, order, lesions, rng, tones, lambda i: part[i < half])
    rows.sort(key=lambda r: (list(HAM_DX).index(r[2]), r[0], r[1]))
    header = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]
    _write_csv(root / "HAM10000_metadata", header, rows)
    t_ids = [
        f"ISIC_{i:07d}" for i in sorted(rng.sample(range(34524, 36036), sum(test_counts.values())))
    ]
    t_les = [f"HAM_{i:07d}" for i in rng.sample(range(7470, 9999), len(t_ids))]
    t_rows = _ham_rows(
        ctx,
        paint,
        test_counts,
        t_ids,
        t_les,
        rng,
        _tones(len(t_ids), TONES_LIGHT, rng),
        lambda i: root / "ISIC2018_Task3_Test_Images",
    )
    t_rows.sort(key=lambda r: r[1])
    _write_csv(root / "ISIC2018_Task3_Test_GroundTruth.csv", header, t_rows)
    return {"images": len(rows) + len(t_rows)}


PAD_REGIONS = (
    "FACE",
    "NOSE",
    "FOREARM",
    "BACK",
    "CHEST",
    "ARM",
    "HAND",
    "EAR",
    "NECK",
    "LIP",
    "SCALP",
    "THIGH",
    "ABDOMEN",
    "FOOT",
)
PAD_HEADER = pad_ufes20.HEADER  # the loader's own header, so the layouts agree


def write_pad_ufes20(ctx: _Context, root: Path) -> dict:
    """``metadata.csv`` (26 columns) + ``images/imgs_part_N/imgs_part_N/PAT_<p>_<l>_<n>.png``."""
    rng, paint = ctx.rng("PAD-UFES-20"), _Painter(ctx, "PAD-UFES-20")
    counts = allocate({k: v[0] for k, v in PAD_DX.items()}, ctx.n("PAD-UFES-20"), ctx.floor)
    units = _expand(counts, rng, max_group=2, p_single=0.8)
    patients = rng.sample(range(1, 1700), len(units))
    lesion_ids = rng.sample(range(1, 2100), len(units))
    tones = _tones(sum(counts.values()), TONES_VARIED, rng)
    boolean = ("True", "False")
    rows, img_no, t = [], rng.randint(1, 50), 0
    p_i = 0
    for u, (dx, k) in enumerate(units):
        if u == 0 or rng.random() >= 0.25:  # else: another lesion of the previous patient
            p_i = u
        patient, lesion = f"PAT_{patients[p_i]}", lesion_ids[u]
        sparse = dx == "NEV" and rng.random() < 0.5  # many NEV rows lack the questionnaire
        age = rng.randint(6, 94) if dx != "NEV" else rng.randint(6, 60)
        feats = paint.features(dx, PAD_DX[dx][1])
        region, sex = rng.choice(PAD_REGIONS), rng.choice(("MALE", "FEMALE"))
        d1, d2 = rng.randint(3, 20), rng.randint(2, 15)
        biopsed = "True" if dx in {"BCC", "SCC", "MEL"} else rng.choice(boolean)
        for _ in range(k):
            tone = tones[t]
            t += 1
            img_no += rng.randint(1, 5)
            img = f"{patient}_{lesion}_{img_no}.png"
            part = f"imgs_part_{1 + (img_no % 3)}"
            paint.draw(root / "images" / part / part / img, feats, tone, modality="clinical")
            symptoms = [rng.choice(("True", "False", "UNK")) for _ in range(6)]
            if sparse:
                rows.append(
                    [
                        patient,
                        lesion,
                        "",
                        "",
                        "",
                        "",
                        age,
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        region,
                        "",
                        "",
                        dx,
                        *symptoms,
                        img,
                        "False",
                    ]
                )
            else:
                origin = rng.choice(("POMERANIA", "ITALY", "GERMANY", "BRAZIL", "PORTUGAL"))
                rows.append(
                    [
                        patient,
                        lesion,
                        rng.choice(boolean),
                        rng.choice(boolean),
                        origin,
                        origin,
                        age,
                        rng.choice(boolean),
                        sex,
                        rng.choice(boolean),
                        rng.choice(boolean),
                        "True",
                        rng.choice(boolean),
                        f"{tone:.1f}",
                        region,
                        f"{d1:.1f}",
                        f"{d2:.1f}",
                        dx,
                        *symptoms,
                        img,
                        biopsed,
                    ]
                )
    _write_csv(root / "metadata.csv", PAD_HEADER, rows)
    return {"images": len(rows)}


BCN_SITES = (
    "anterior torso",
    "posterior torso",
    "head/neck",
    "upper extremity",
    "lower extremity",
    "palms/soles",
    "oral/genital",
    "",
)
BCN_HEADER = bcn20000.HEADER  # the loader's own header, so the layouts agree


def write_bcn20000(ctx: _Context, root: Path) -> dict:
    """Figshare layout: ``bcn_20k_train.csv`` + ``bcn_20k_train/``, and the unlabelled test
    release ``bcn_20k_test.csv`` + ``bcn_20k_test/`` (its columns are a guess [U]: the train
    columns without ``diagnosis``)."""
    rng, paint = ctx.rng("BCN20000"), _Painter(ctx, "BCN20000")
    counts = allocate({k: v[0] for k, v in BCN_DX.items()}, ctx.n("BCN20000"), ctx.floor)
    n_test = ctx.n("BCN20000_test")
    total = sum(counts.values()) + n_test
    numbers = sorted(rng.sample(range(1, 19000), total))
    names = [f"BCN_{i:010d}.jpg" for i in numbers]
    rng.shuffle(names)
    tones = _tones(total, TONES_LIGHT, rng)
    lesions = iter(rng.sample(range(1, 6000), total))
    start = date(2010, 1, 1)
    rows, i = [], 0
    for dx, k in _expand(counts, rng, max_group=3, p_single=0.6):
        lesion = f"BCN_{next(lesions):07d}"
        age, sex, site = (
            rng.randrange(15, 90, 5),
            rng.choice(("male", "female")),
            rng.choice(BCN_SITES),
        )
        feats = paint.features(dx, BCN_DX[dx][1])
        for _ in range(k):
            name, day = names[i], start + timedelta(days=rng.randint(0, 3650))
            paint.draw(root / "bcn_20k_train" / name, feats, tones[i])
            rows.append([name, _num(age), site, dx, lesion, day.isoformat(), sex, "train"])
            i += 1
    rows.sort(key=lambda r: r[0])
    _write_csv(root / "bcn_20k_train.csv", BCN_HEADER, rows)
    test_rows = []
    for j in range(n_test):
        name = names[i + j]
        dx = rng.choice(list(BCN_DX))
        paint.draw(root / "bcn_20k_test" / name, paint.features(dx, BCN_DX[dx][1]), tones[i + j])
        test_rows.append(
            [
                name,
                _num(rng.randrange(15, 90, 5)),
                rng.choice(BCN_SITES),
                f"BCN_{next(lesions):07d}",
                (start + timedelta(days=rng.randint(0, 3650))).isoformat(),
                rng.choice(("male", "female")),
                "test",
            ]
        )
    header = [h for h in BCN_HEADER if h != "diagnosis"]
    _write_csv(root / "bcn_20k_test.csv", header, sorted(test_rows))
    return {"images": len(rows) + len(test_rows)}


DERM12345_HEADER = derm12345.HEADER  # the loader's own header, so the layouts agree


def write_derm12345(ctx: _Context, root: Path) -> dict:
    """Kaggle layout: ``derm12345_metadata_{train,test}.csv``; images under
    ``derm12345_train_part_{1,2}/<label>/`` (alm, anm in part 1) and ``derm12345_test/<label>/``.
    Official train/test 80:20 by patient. Image and patient id formats are a guess [U]."""
    rng, paint = ctx.rng("derm12345"), _Painter(ctx, "derm12345")
    floor = 2 if ctx.scale >= 0.5 else 1
    n = ctx.n_with_test("derm12345", 0.2)
    counts = allocate({k: v[5] for k, v in DERM12345.items()}, n, floor)
    units = _expand(counts, rng, max_group=2, p_single=0.75)
    tones = _tones(sum(counts.values()), TONES_LIGHT, rng)
    test = ctx.test_fraction(0.2)
    cut = official_cut([label for label, _ in units], {"train": 1 - test, "test": test}, rng)
    ids = iter(rng.sample(range(1, 12346), sum(counts.values())))
    rows = {"train": [], "test": []}
    t = 0
    for u, (label, k) in enumerate(units):
        split = cut[u]
        patient = f"patient_{rng.randint(1, 9999):04d}"
        super_class, malignancy, m1, m2, sub, _, hint = DERM12345[label]
        feats = paint.features(label, hint)
        for _ in range(k):
            image_id = f"derm12345_{next(ids):05d}"
            if split == "test":
                folder = root / "derm12345_test" / label
            else:
                part = 1 if label in {"alm", "anm"} else 2
                folder = root / f"derm12345_train_part_{part}" / label
            paint.draw(folder / f"{image_id}.jpg", feats, tones[t])
            t += 1
            rows[split].append(
                [image_id, patient, split, super_class, malignancy, m1, m2, sub, label]
            )
    for split, body in rows.items():
        _write_csv(root / f"derm12345_metadata_{split}.csv", DERM12345_HEADER, sorted(body))
    return {"images": t}


DERM7PT_HEADER = derm7pt.HEADER  # the loader's own header, so the layouts agree
DERM7PT_LOCATIONS = (
    "back",
    "lower limbs",
    "upper limbs",
    "abdomen",
    "chest",
    "head neck",
    "buttocks",
    "genital areas",
    "acral",
)
DERM7PT_FOLDERS = ("Aal", "Abl", "Fgl", "Fhl", "Gal", "NEL", "Nbl", "Ncl")
VESSELS = {
    "arborizing vessels": "arborizing",
    "dotted vessels": "dotted",
    "hairpin vessels": "hairpin",
    "linear irregular vessels": "linear irregular",
    "glomerular vessels": "dotted",
}


def seven_point(f: Features) -> dict[str, str]:
    """The 7-point checklist fields a Derm7pt annotator would give the drawn features."""
    s = set(f.structures)
    network = (
        "atypical"
        if "atypical pigment network" in s
        else "typical"
        if {"typical pigment network", "peripheral fine network"} & s
        else "absent"
    )
    dots = (
        "irregular"
        if "irregular dots and globules" in s
        else "regular"
        if "regular dots and globules" in s
        else "absent"
    )
    streaks = (
        "irregular"
        if "irregular streaks" in s
        else "regular"
        if "regular streaks" in s
        else "absent"
    )
    vessel = next((VESSELS[v] for v in f.structures if v in VESSELS), "absent")
    dark = {"dark brown", "black", "light brown"} & set(f.colours)
    pigmentation = (
        "absent"
        if not dark
        else "diffuse irregular"
        if f.symmetry == "asymmetric"
        else "diffuse regular"
    )
    fields = {
        "pigment_network": network,
        "streaks": streaks,
        "pigmentation": pigmentation,
        "regression_structures": "white areas" if "regression structures" in s else "absent",
        "dots_and_globules": dots,
        "blue_whitish_veil": "present" if "blue-white veil" in s else "absent",
        "vascular_structures": vessel,
    }
    score = (
        2 * (network == "atypical")
        + 2 * (fields["blue_whitish_veil"] == "present")
        + 2 * (vessel in {"dotted", "linear irregular"})
        + (pigmentation.endswith("irregular"))
        + (streaks == "irregular")
        + (dots == "irregular")
        + (fields["regression_structures"] != "absent")
    )
    fields["seven_point_score"] = str(score)
    return fields


def write_derm7pt(ctx: _Context, root: Path) -> dict:
    """release_v0 layout: ``release_v0/meta/{meta.csv, *_indexes.csv}``, ``release_v0/images/``,
    two photos per case with mixed ``.JPG``/``.jpg``; index files hold 0-based row positions."""
    rng, paint = ctx.rng("derm7pt"), _Painter(ctx, "derm7pt")
    base = root / "release_v0"
    test_share = 395 / 1011  # the official proportions, 413 : 203 : 395 of 1011 cases
    counts = allocate(
        {k: v[0] for k, v in DERM7PT_DX.items()},
        ctx.n_with_test("derm7pt", test_share),
        1 if ctx.scale >= 0.5 else 0,
    )
    cases = [dx for dx, n in counts.items() for _ in range(n)]
    rng.shuffle(cases)
    tones = _tones(len(cases), TONES_LIGHT, rng)
    rows, file_no = [], {}
    for i, dx in enumerate(cases):
        feats = paint.features(dx, DERM7PT_DX[dx][1])
        folder = rng.choice(DERM7PT_FOLDERS)
        paths = []
        for modality in ("clinical", "dermoscopic"):
            file_no[folder] = file_no.get(folder, 0) + 1
            stem = folder.upper() if rng.random() < 0.5 else folder.capitalize()
            ext = rng.choice((".JPG", ".jpg"))
            rel = f"{folder}/{stem}{file_no[folder]:03d}{ext}"
            paint.draw(base / "images" / rel, feats, tones[i], modality=modality)
            paths.append(rel)
        sp = seven_point(feats)
        elevation = {"flat": "flat", "raised": "palpable", "nodular": "nodular"}[feats.elevation]
        rows.append(
            [
                i + 1,
                dx,
                sp["seven_point_score"],
                sp["pigment_network"],
                sp["streaks"],
                sp["pigmentation"],
                sp["regression_structures"],
                sp["dots_and_globules"],
                sp["blue_whitish_veil"],
                sp["vascular_structures"],
                rng.choice(("low", "medium", "high")),
                elevation,
                rng.choice(DERM7PT_LOCATIONS),
                rng.choice(("female", "male")),
                "excision"
                if "melanoma" in dx or dx == "basal cell carcinoma"
                else rng.choice(("clinical follow up", "no further examination")),
                paths[0],
                paths[1],
                "",
                "",
            ]
        )
    _write_csv(base / "meta" / "meta.csv", DERM7PT_HEADER, rows)
    cut = official_cut(cases, {"train": 413, "valid": 203, "test": 395 * ctx.test_scale}, rng)
    for name in ("train", "valid", "test"):
        rows_ = [[pos] for pos, sp in enumerate(cut) if sp == name]
        _write_csv(base / "meta" / f"{name}_indexes.csv", ["indexes"], rows_)
    return {"images": 2 * len(rows)}


def write_dermnet(ctx: _Context, root: Path) -> dict:
    """Kaggle layout: ``{train,test}/<23 class folders>/name-parts-<digits>.jpg`` (about 80:20),
    in-scope cancer look-alikes plus out-of-scope diseases and pattern-less file names."""
    from skinr1.datasets.dermnet import FOLDERS

    rng, paint = ctx.rng("dermnet"), _Painter(ctx, "dermnet")
    for part in ("train", "test"):
        for folder in FOLDERS:
            (root / part / folder).mkdir(parents=True, exist_ok=True)
    items: list[tuple[str, str, str | None]] = []  # (folder, stem, hint)
    ins = allocate(
        {f"{i}": w for i, (*_, w, _h) in enumerate(DERMNET_IN)},
        ctx.n_with_test("dermnet_in", 0.2),
        ctx.floor,
    )
    for i, (folder, stem, _, hint) in enumerate(DERMNET_IN):
        items += [(folder, stem, hint)] * ins[str(i)]
    outs = allocate(
        {f"{i}": w for i, (*_, w) in enumerate(DERMNET_OUT)},
        ctx.n_with_test("dermnet_out", 0.2) - len(DERMNET_PLAIN),
        1,
    )
    for i, (folder, stem, _) in enumerate(DERMNET_OUT):
        items += [(folder, stem, None)] * outs[str(i)]
    tones = _tones(len(items) + len(DERMNET_PLAIN), TONES_VARIED, rng)
    numbers: dict[str, int] = {}
    written = 0
    for j, (folder, stem, hint) in enumerate(items):
        numbers[stem] = numbers.get(stem, 0) + rng.randint(1, 9)
        part = "test" if rng.random() < ctx.test_fraction(0.2) else "train"
        raw = stem.replace("-", " ")
        path = root / part / folder / f"{stem}-{numbers[stem]}.jpg"
        paint.draw(path, paint.features(raw, hint), tones[j], modality="clinical")
        written += 1
    for j, (folder, stem) in enumerate(DERMNET_PLAIN):
        paint.draw(
            root / "train" / folder / f"{stem}.jpg",
            paint.features(folder, None),
            tones[len(items) + j],
            modality="clinical",
        )
        written += 1
    return {"images": written}


OMNI_QUESTIONS = (
    "What is the diagnosis of this image?",
    "Which skin disease is shown in this dermoscopy image?",
    "What diagnosis best fits the lesion in the picture?",
)


def _omni_item(
    rng, qid, source, image_path, answer, pool, qtype="Disease Diagnosis", question=None
) -> dict:
    n_opts = rng.choices((4, 3, 2), (0.8, 0.1, 0.1))[0]
    wrong = [a for a in pool if a.lower() != answer.lower()]
    options = [answer, *rng.sample(wrong, min(n_opts - 1, len(wrong)))]
    rng.shuffle(options)
    item = {
        "question_id": qid,
        "question_type": qtype,
        "question": question or rng.choice(OMNI_QUESTIONS),
        # Answers come spelled like the option or with a stray full stop / case change.
        "gt_answer": rng.choice((answer, answer, f"{answer}.", answer.lower())),
        "image_path": image_path,
    }
    for letter, text in zip("ABCD", options, strict=False):
        item[f"option_{letter}"] = text
    if len(options) < 4 and rng.random() < 0.5:  # missing vs explicit null options
        for letter in "ABCD"[len(options) :]:
            item[f"option_{letter}"] = None
    item["modality_type"] = "Dermoscopy"
    item["dataset"] = source
    return item


def write_omnimedvqa(ctx: _Context, root: Path) -> dict:
    """The archive as it unpacks: ``OmniMedVQA/OmniMedVQA/{QA_information/Open-access/
    <Dataset>.json, Images/<Dataset>/...}``; Disease Diagnosis items of the five kept sources,
    a few other question types, and the two files the paper excludes."""
    rng, paint = ctx.rng("OmniMedVQA"), _Painter(ctx, "OmniMedVQA")
    base = root / "OmniMedVQA"
    qa = base / "QA_information" / "Open-access"
    per_source = allocate(
        {s: v[0] for s, v in OMNI_SOURCES.items()},
        max(1, round(ctx.n("OmniMedVQA") * ctx.test_scale)),  # all of it is test
        ctx.floor,
    )
    n_images = 2 * sum(per_source.values()) + 50  # an upper bound on the images drawn
    tones = iter(_tones(n_images, TONES_LIGHT, rng))
    image_no = iter(rng.sample(range(1, 73000), n_images))
    written = 0
    generic = ["Psoriasis", "Eczema", "Melanoma", "Basal cell carcinoma", "Melanocytic nevus"]

    def image(folder: str, answer: str, modality: str = "dermoscopic") -> str:
        nonlocal written
        rel = f"{folder}/ISIC_{next(image_no):07d}.jpg"
        hint = OMNI_HINTS.get(answer.lower(), answer)
        paint.draw(base / rel, paint.features(answer, hint), next(tones), modality=modality)
        written += 1
        return rel

    for source, (_, folder, classes) in OMNI_SOURCES.items():
        answers = allocate(
            classes, per_source[source], 1 if len(classes) <= per_source[source] else 0
        )
        items = []
        # Diagnosis questions draw distractors from other diseases too; benign-vs-malignant
        # ones have just their two answers (so option_C/D are missing or null).
        pool = list(classes) + (
            [g for g in generic if g not in classes] if len(classes) > 2 else []
        )
        modality = "clinical" if source.startswith("Monkeypox") else "dermoscopic"
        for answer, n in answers.items():
            for _ in range(n):
                qid = f"{source.replace(' ', '_')}_{len(items):04d}"
                items.append(
                    _omni_item(rng, qid, source, image(folder, answer, modality), answer, pool)
                )
        for _ in range(max(1, per_source[source] // 6)):  # other question types, left out
            answer = rng.choice(list(classes))
            items.append(
                _omni_item(
                    rng,
                    f"{source.replace(' ', '_')}_{len(items):04d}",
                    source,
                    image(folder, answer, modality),
                    "Dermoscopy",
                    ["Dermoscopy", "CT", "MRI", "X-Ray"],
                    "Modality Recognition",
                    "What imaging modality was used to take this image?",
                )
            )
        rng.shuffle(items)
        qa.mkdir(parents=True, exist_ok=True)
        (qa / f"{source}.json").write_text(json.dumps(items, indent=4), encoding="utf-8")
    for source, real in OMNI_EXCLUDED.items():
        items = []
        answers = ["Psoriasis", "Basal cell carcinoma", "Melanoma", "Eczema"]
        for k in range(max(2, round(real / 3652 * ctx.n("OmniMedVQA") / 3))):
            answer = answers[k % len(answers)]
            items.append(
                _omni_item(
                    rng,
                    f"{source.replace(' ', '_')}_{k:04d}",
                    source,
                    image(f"Images/{source}", answer),
                    answer,
                    answers,
                )
            )
        (qa / f"{source}.json").write_text(json.dumps(items, indent=4), encoding="utf-8")
    return {"images": written}


# --- textbook exemplars ----------------------------------------------------------------------
ROMAN = ("I", "II", "III", "IV", "V", "VI")
VIEWS = {"dermoscopic": "Dermoscopy", "clinical": "A clinical photograph"}


def rationale_opening(modality: str, tone: int) -> str:
    """How every textbook rationale opens, e.g. "Dermoscopy of Fitzpatrick type IV skin shows a"."""
    return f"{VIEWS[modality]} of Fitzpatrick type {ROMAN[tone - 1]} skin shows a"


# The RL datasets whose labels the textbook covers (OmniMedVQA is held out: it is the OOD test).
TEXTBOOK_DATASETS = ("HAM10000", "PAD-UFES-20", "BCN20000", "derm12345", "derm7pt", "dermnet")


def textbook_diagnoses(taxonomy) -> list[str]:
    """The HAM10000 classes, their DDx neighbours, then every other label of the RL datasets'
    label trees (the subtypes derm12345, derm7pt and DermNet ask about), as a textbook covers
    them — the diagnoses SkinRationale needs."""
    from skinr1.ddx import load_ddx

    main = list(dict.fromkeys(taxonomy.dataset_maps.get("HAM10000", {}).values()))
    try:
        graph = load_ddx(taxonomy)
    except KnowledgeError:  # a broken graph must not stop the demo; the main classes still help
        graph = None
    out = list(main)
    for node in main:
        for nb in graph.neighbours(node) if graph is not None else []:
            if nb not in out:
                out.append(nb)
    for dataset in TEXTBOOK_DATASETS:
        for node in taxonomy.dataset_maps.get(dataset, {}).values():
            if node not in out:
                out.append(node)
    return out


def write_textbook(ctx: _Context, root: Path) -> dict:
    """``textbook/cases.jsonl`` + ``textbook/images/*.png``: ``ctx.textbook["per_class"]`` cases of
    each HAM10000 class, ``per_neighbour`` of each DDx neighbour and ``per_label`` of every other
    label of the RL datasets (at scale 1, at least 2 each), each with a rationale that describes
    exactly what its image shows."""
    from skinr1.ddx import load_ddx

    rng, paint = ctx.rng("textbook"), _Painter(ctx, "textbook")
    classes = set(ctx.taxonomy.dataset_maps.get("HAM10000", {}).values())
    try:
        graph = load_ddx(ctx.taxonomy)
        neighbours = {nb for c in classes for nb in graph.neighbours(c)}
    except KnowledgeError:
        neighbours = set()
    lines = []
    for node in textbook_diagnoses(ctx.taxonomy):
        key = (
            "per_class" if node in classes
            else "per_neighbour" if node in neighbours
            else "per_label"
        )  # fmt: skip
        per = max(2, round(ctx.textbook[key] * ctx.scale))
        try:
            rule = ctx.rules.rule_for(node, ctx.taxonomy)
        except KeyError:
            continue  # no rule, no drawable features: no exemplar
        slug = node.replace(" ", "-").replace("/", "-")
        tones = _tones(per, TONES_VARIED, rng)
        for k in range(per):
            modality = "clinical" if k % 4 == 3 else "dermoscopic"
            case_id = f"textbook-{slug}-{k + 1:02d}"
            rel = f"images/{case_id}.png"
            paint.draw(root / rel, rule.features, tones[k], modality=modality)
            rationale = (
                f"{rationale_opening(modality, tones[k])} {rule.features.describe()}. {rule.text}"
            )
            lines.append(
                json.dumps({"id": case_id, "image": rel, "rationale": rationale, "diagnosis": node})
            )
    (root / "cases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"images": len(lines), "cases": len(lines)}


WRITERS = {
    "HAM10000": write_ham10000,
    "PAD-UFES-20": write_pad_ufes20,
    "BCN20000": write_bcn20000,
    "derm12345": write_derm12345,
    "derm7pt": write_derm7pt,
    "dermnet": write_dermnet,
    "OmniMedVQA": write_omnimedvqa,
    "textbook": write_textbook,
}


# --- entry points ----------------------------------------------------------------------------
def _fingerprint(taxonomy, rules, render: Callable) -> str:
    """Changes when anything the demo is made from changes: the knowledge (maps, tree, rules)
    or the code that writes and draws it — so a reused root is never stale."""
    code = []
    for obj in (write_demo, render):
        try:
            code.append(hashlib.sha256(Path(inspect.getfile(obj)).read_bytes()).hexdigest())
        except (TypeError, OSError):
            code.append(repr(obj))
    blob = json.dumps(
        {
            "maps": taxonomy.dataset_maps,
            "nodes": sorted(taxonomy.nodes),
            "code": code,
            "rules": {k: [r.text, asdict(r.features)] for k, r in sorted(rules.rules.items())},
        },
        sort_keys=True,
        default=list,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_demo(
    root: Path,
    taxonomy,
    rules,
    *,
    seed: int,
    scale: float = 1.0,
    image_size: int = 128,
    test_scale: float = 1.0,
    textbook: dict[str, int] | None = None,
    render: Callable | None = None,
) -> dict:
    """Write (or reuse) the demo data under ``root``; return counts per dataset and split.

    Reused when ``root`` holds a completed marker for the same parameters and inputs (and its
    ``annotations.csv``; a root from before the sidecar existed is regenerated). The
    data are written to a sibling temporary folder and renamed into place at the end, so an
    interrupted run never leaves a root that looks finished. An existing ``root`` is replaced
    only if it is empty or an earlier demo root (it has the marker).

    ``test_scale`` enlarges the held-out parts alone (HAM10000's ISIC 2018 test set, the
    official test parts of derm12345, derm7pt and DermNet, and OmniMedVQA), so that test sets
    are large enough for narrow intervals while training data keep their size. PAD-UFES-20 and
    BCN20000 ship no test split (the loaders cut 6:2:2), so they keep theirs.

    ``textbook`` gives the textbook's cases per diagnosis (keys of ``TEXTBOOK_COUNTS``; default
    those): how many SFT trajectories each class, DDx neighbour and subtype gets.
    """
    if scale <= 0:
        raise ValueError(f"scale={scale}: must be > 0")
    if test_scale < 1:
        raise ValueError(f"demo.test_scale={test_scale}: must be >= 1 (1 = the real proportions)")
    textbook = dict(TEXTBOOK_COUNTS if textbook is None else textbook)
    if set(textbook) != set(TEXTBOOK_COUNTS) or min(textbook.values()) < 1:
        raise ValueError(
            f"demo.textbook={textbook}: expected counts >= 1 for exactly {sorted(TEXTBOOK_COUNTS)}"
        )
    if image_size < 16:
        raise ValueError(f"image_size={image_size}: must be at least 16 pixels")
    if render is None:
        from skinr1.embedded.lesions import render
    root = Path(root)
    params = {
        "version": DEMO_VERSION,
        "seed": seed,
        "scale": scale,
        "image_size": image_size,
        "test_scale": test_scale,
        "textbook": textbook,
        "inputs": _fingerprint(taxonomy, rules, render),
    }
    marker = root / MARKER
    if marker.is_file():
        try:
            done = json.loads(marker.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            done = {}
        if done.get("params") == params and (root / ANNOTATIONS).is_file():
            return done["summary"]
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{root} exists and is not a demo root (no {MARKER}); pick another --root or remove it"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    ctx = _Context(taxonomy, rules, seed, scale, image_size, render, test_scale, textbook)
    try:
        images = {}
        for name, writer in WRITERS.items():
            folder = tmp / name
            folder.mkdir(parents=True)
            images[name] = writer(ctx, folder)["images"]
        write_annotations(
            tmp / ANNOTATIONS, {p.relative_to(tmp).as_posix(): t for p, t in ctx.tones.items()}
        )
        summary = {
            "root": str(root),
            **{k: params[k] for k in ("seed", "scale", "image_size", "test_scale")},
            "images": images,
            "samples": _loaded_counts(tmp, taxonomy, seed),
        }
        (tmp / MARKER).write_text(
            json.dumps({"params": params, "summary": summary}, indent=1), encoding="utf-8"
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-written tree behind
        raise
    if root.exists():
        old = root.parent / f".{root.name}.old-{os.getpid()}"
        root.rename(old)
        tmp.rename(root)
        shutil.rmtree(old)
    else:
        tmp.rename(root)
    return summary


def _loaded_counts(root: Path, taxonomy, seed: int) -> dict:
    """Read the written data back through the real loaders: samples per split, and unmapped."""
    from skinr1.datasets import load_all
    from skinr1.datasets.textbook import load_cases

    out = {}
    for name, res in load_all(root, taxonomy, seed=seed, check_images=False).items():
        out[name] = {**res.counts(), "unmapped": sum(res.unmapped.values())}
    out["textbook"] = {"cases": len(load_cases(root, taxonomy))}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m skinr1 demo-data",
        description="Write the demo datasets, in the real datasets' layouts, under --root. "
        "Values come from --params (seed, demo.root, demo.scale, demo.image_size) where given; "
        "explicit options override them.",
    )
    parser.add_argument("--params", type=Path, help="params.yaml to read seed and demo.* from")
    parser.add_argument("--root", type=Path, help="output folder (default data/demo)")
    parser.add_argument("--seed", type=int, help="default 1234")
    parser.add_argument("--scale", type=float, help="multiplies every count (default 1.0)")
    parser.add_argument("--image-size", type=int, help="image side in pixels (default 128)")
    parser.add_argument(
        "--test-scale", type=float, help="multiplies the held-out parts alone (default 1.0)"
    )
    args = parser.parse_args(argv)
    defaults = {
        "root": Path("data/demo"), "seed": 1234, "scale": 1.0, "image_size": 128, "test_scale": 1.0,
        "textbook": None,
    }  # fmt: skip
    if args.params is not None:
        from skinr1.config import load_params

        p = load_params(args.params, require=("demo",))
        defaults = {
            "root": Path(p.demo.root),
            "seed": p.seed,
            "scale": p.demo.scale,
            "image_size": p.demo.image_size,
            "test_scale": p.demo.test_scale,
            "textbook": p.demo.textbook.model_dump(),
        }
    opts = {
        k: v if getattr(args, k, None) is None else getattr(args, k) for k, v in defaults.items()
    }
    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    summary = write_demo(
        opts["root"],
        taxonomy,
        load_rules(taxonomy),
        seed=opts["seed"],
        scale=opts["scale"],
        image_size=opts["image_size"],
        test_scale=opts["test_scale"],
        textbook=opts["textbook"],
    )
    print(
        f"demo data in {opts['root']} (seed {opts['seed']}, scale {opts['scale']}, test scale "
        f"{opts['test_scale']}, {opts['image_size']} px)"
    )
    print(f"{'dataset':<13}{'images':>8}{'train':>7}{'val':>6}{'test':>6}{'unmapped':>10}")
    for name, n in summary["images"].items():
        c = summary["samples"].get(name, {})
        if name == "textbook":
            print(f"{name:<13}{n:>8}   ({c.get('cases', 0)} cases)")
            continue
        print(
            f"{name:<13}{n:>8}{c.get('train', 0):>7}{c.get('val', 0):>6}"
            f"{c.get('test', 0):>6}{c.get('unmapped', 0):>10}"
        )
    return 0
