"""How long ``python -m skinr1 datasets ROOT`` takes on a tree the size of the real downloads.

    python tools/bench_datasets.py [--root DIR] [--scale 1.0] [--keep]

Writes the seven datasets in their real on-disk layouts (headers, folder nesting, file names) at
their published sizes times ``--scale``: HAM10000 10,015 + the ISIC 2018 test set 1,512,
PAD-UFES-20 2,298, BCN20000 12,413, DERM12345 12,345, Derm7pt 1,011 cases (2,022 photos), DermNet
19,559 (15,557 train + 4,002 test), so 60,164 images, plus OmniMedVQA's 6,718 skin Disease
Diagnosis questions on their own images. Each image is an 8x8 JPEG (PNG for PAD-UFES-20) made
unique by bytes after its end marker, so generation is quick and every file hashes differently,
except ``PLANTED`` duplicate groups (two by ISIC id, one by content). Then it runs the report's
code path (``build_report``) with the image-header check and hashing on, and prints the wall time.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

SIZES = {
    "HAM10000": 10015,
    "ISIC2018 test": 1512,
    "PAD-UFES-20": 2298,
    "BCN20000": 12413,
    "derm12345 train": 9876,
    "derm12345 test": 2469,
    "derm7pt cases": 1011,
    "dermnet train": 15557,
    "dermnet test": 4002,
    "OmniMedVQA": 6718,
}
PLANTED = 3  # duplicate groups: 2 HAM10000 ids in OmniMedVQA, 1 BCN20000 file's bytes there
OMNI_ANSWERS = ("Melanoma", "Melanocytic nevus", "Basal cell carcinoma", "Benign image")
# DermNet names: in the label map, found through the taxonomy's names, and none of them.
DERMNET_NAMES = ("basal-cell-carcinoma", "nevi-blue", "keratoses-seborrheic-face", "rosacea")


def _image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (170, 110, 90)).save(buf, format=fmt)
    return buf.getvalue()


class _Writer:
    def __init__(self) -> None:
        self.jpeg, self.png, self.n = _image_bytes("JPEG"), _image_bytes("PNG"), 0

    def __call__(self, path: Path, png: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.n += 1
        path.write_bytes((self.png if png else self.jpeg) + self.n.to_bytes(4, "big"))


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def generate(root: Path, scale: float = 1.0) -> dict[str, int]:
    """Write the tree; returns the labelled records per dataset (images, or questions)."""
    from skinr1.datasets import bcn20000, derm7pt, derm12345, pad_ufes20
    from skinr1.datasets.dermnet import FOLDERS
    from skinr1.taxonomy import load_taxonomy

    tax = load_taxonomy()
    n = {k: max(3, round(v * scale)) for k, v in SIZES.items()}
    img = _Writer()
    labels = {ds: list(tax.dataset_maps[ds]) for ds in tax.dataset_maps}

    ham = root / "HAM10000"
    head = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
    rows = []
    for i in range(n["HAM10000"]):
        iid = f"ISIC_{24306 + i:07d}"
        rows.append([f"HAM_{i // 2:07d}", iid, labels["HAM10000"][i % 7], "histo", 50, "male",
                     "back"])  # fmt: skip
        img(ham / f"HAM10000_images_part_{1 + i % 2}" / f"{iid}.jpg")
    _csv(ham / "HAM10000_metadata.csv", head, rows)
    rows = []
    for i in range(n["ISIC2018 test"]):
        iid = f"ISIC_{34524 + i:07d}"
        rows.append([f"HAMTEST_{i:07d}", iid, labels["HAM10000"][i % 7], "histo", 50, "female",
                     "face"])  # fmt: skip
        img(ham / "ISIC2018_Task3_Test_Images" / f"{iid}.jpg")
    _csv(ham / "ISIC2018_Task3_Test_GroundTruth.csv", head, rows)

    pad = root / "PAD-UFES-20"
    rows = []
    for i in range(n["PAD-UFES-20"]):
        name = f"PAT_{i // 3}_{i}_{i}.png"
        row = dict.fromkeys(pad_ufes20.HEADER, "")
        row.update(patient_id=f"PAT_{i // 3}", lesion_id=i, age=60, gender="MALE", region="ARM",
                   diagnostic=labels["PAD-UFES-20"][i % 6], img_id=name)  # fmt: skip
        rows.append(list(row.values()))
        part = 1 + i % 3
        img(pad / "images" / f"imgs_part_{part}" / f"imgs_part_{part}" / name, png=True)
    _csv(pad / "metadata.csv", list(pad_ufes20.HEADER), rows)

    bcn = root / "BCN20000"
    rows = []
    for i in range(n["BCN20000"]):
        name = f"BCN_{i + 1:010d}.jpg"
        rows.append([name, 55, "anterior torso", labels["BCN20000"][i % 8], f"BCN_{i // 2:07d}",
                     "2015-01-01", "female", "train"])  # fmt: skip
        img(bcn / "bcn_20k_train" / name)
    _csv(bcn / "bcn_20k_train.csv", list(bcn20000.HEADER), rows)

    d12 = root / "derm12345"
    for part, key, prefix in (("train", "derm12345 train", "derm12345_train_part_1"),
                              ("test", "derm12345 test", "derm12345_test")):  # fmt: skip
        rows = []
        for i in range(n[key]):
            iid, label = f"{part}_{i:05d}", labels["derm12345"][i % 40]
            rows.append([iid, f"patient_{i // 4}", part, "", "", "", "", "", label])
            img(d12 / prefix / label / f"{iid}.jpg")
        _csv(d12 / f"derm12345_metadata_{part}.csv", list(derm12345.HEADER), rows)

    d7 = root / "derm7pt" / "release_v0"
    rows, idx = [], {"train": [], "valid": [], "test": []}
    for i in range(n["derm7pt cases"]):
        row = dict.fromkeys(derm7pt.HEADER, "")
        row.update(case_num=i + 1, diagnosis=labels["derm7pt"][i % 19], sex="female",
                   location="back", clinic=f"Aaa/C{i:04d}.jpg", derm=f"Aaa/D{i:04d}.jpg")  # fmt: skip
        rows.append(list(row.values()))
        idx[("train", "train", "valid", "test")[i % 4]].append([i])
        img(d7 / "images" / "Aaa" / f"C{i:04d}.jpg")
        img(d7 / "images" / "Aaa" / f"D{i:04d}.jpg")
    _csv(d7 / "meta" / "meta.csv", list(derm7pt.HEADER), rows)
    for part, positions in idx.items():
        _csv(d7 / "meta" / f"{part}_indexes.csv", ["indexes"], positions)

    dn = root / "dermnet"
    for part in ("train", "test"):
        for i in range(n[f"dermnet {part}"]):
            stem = DERMNET_NAMES[i % len(DERMNET_NAMES)]
            img(dn / part / FOLDERS[i % len(FOLDERS)] / f"{stem}-{i}.jpg")

    base = root / "OmniMedVQA" / "OmniMedVQA"
    folder = "Images/ISIC2019/train"
    items = []
    for i in range(n["OmniMedVQA"]):
        rel = f"{folder}/ISIC_{60000 + i:07d}.jpg"
        img(base / rel)
        answer = OMNI_ANSWERS[i % len(OMNI_ANSWERS)]
        items.append({"question_id": f"ISIC2019_{i:05d}", "question_type": "Disease Diagnosis",
                      "question": "What is the diagnosis?", "gt_answer": answer,
                      **{f"option_{k}": a for k, a in zip("ABCD", OMNI_ANSWERS, strict=True)},
                      "image_path": rel, "modality_type": "Dermoscopy", "dataset": "ISIC2019"})  # fmt: skip
    # Planted: two HAM10000 ids re-shown in OmniMedVQA, one BCN20000 image under another name.
    for k, src in enumerate(
        [ham / "HAM10000_images_part_1" / "ISIC_0024306.jpg",
         ham / "HAM10000_images_part_2" / "ISIC_0024307.jpg",
         bcn / "bcn_20k_train" / "BCN_0000000001.jpg"]
    ):  # fmt: skip
        rel = f"{folder}/{src.name if k < 2 else 'ISIC_0099999.jpg'}"
        (base / rel).write_bytes(src.read_bytes() + (b"re-encoded" if k < 2 else b""))
        items.append({**items[0], "question_id": f"ISIC2019_planted_{k}", "image_path": rel})
    qa = base / "QA_information" / "Open-access"
    qa.mkdir(parents=True, exist_ok=True)
    (qa / "ISIC2019.json").write_text(json.dumps(items, indent=4), encoding="utf-8")
    return {
        "HAM10000": n["HAM10000"] + n["ISIC2018 test"],
        "PAD-UFES-20": n["PAD-UFES-20"],
        "BCN20000": n["BCN20000"],
        "derm12345": n["derm12345 train"] + n["derm12345 test"],
        "derm7pt": 2 * n["derm7pt cases"],
        "dermnet": n["dermnet train"] + n["dermnet test"],
        "OmniMedVQA": len(items),
    }


def measure(root: Path) -> tuple[dict, float]:
    """``build_report`` as ``python -m skinr1 datasets ROOT`` runs it; (report, seconds)."""
    from skinr1.datasets.report import build_report
    from skinr1.taxonomy import load_taxonomy

    start = time.perf_counter()
    report = build_report(root, load_taxonomy(), seed=1234, check_images=True, duplicates=True)
    return report, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, help="where to write the tree (default: a temp folder)")
    ap.add_argument("--scale", type=float, default=1.0, help="times the published sizes")
    ap.add_argument("--keep", action="store_true", help="keep the tree afterwards")
    args = ap.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="bench_datasets_"))
    try:
        t0 = time.perf_counter()
        counts = generate(root, args.scale)
        print(f"generated {counts} in {time.perf_counter() - t0:.1f} s under {root}")
        report, seconds = measure(root)
        for name, entry in report.items():
            if name != "duplicates":
                print(f"{name:<12} samples {entry['samples']}")
        print(f"duplicate groups: {report['duplicates']['groups']} (planted {PLANTED})")
        images = sum(counts.values())
        print(f"python -m skinr1 datasets (headers checked, hashing on): {seconds:.1f} s for "
              f"{images} records")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
