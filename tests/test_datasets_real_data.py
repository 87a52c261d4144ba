"""Real downloads without loss or leakage: DermNet names through the taxonomy, BCN20000's ISIC
Archive export, paths that leave a dataset's folder, and duplicate images across datasets."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from skinr1.datasets import LOADERS
from skinr1.datasets.base import DatasetLayoutError
from skinr1.datasets.names import NameResolver, singular, words
from skinr1.datasets.report import build_report, main, summarise
from skinr1.taxonomy import load_taxonomy

FIX = Path(__file__).parent / "fixtures" / "datasets"
REPO = Path(__file__).resolve().parent.parent


def image(path: Path, colour=(180, 120, 90)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.new("RGB", (8, 6), colour).save(path, format=fmt)


@pytest.fixture(scope="module")
def real_tax():
    return load_taxonomy()


@pytest.fixture(scope="module")
def fix_tax():
    return load_taxonomy(FIX / "knowledge" / "taxonomy.yaml", FIX / "knowledge" / "datasets.yaml")


# --- DermNet names ----------------------------------------------------------------------------
def test_words_are_normalised_both_ways():
    assert words("Keratoses-Seborrheic") == ["keratosis", "seborrheic"]
    assert words("Bowen's disease") == ["bowen", "disease"]
    assert words("erythroplasia of queyrat") == ["erythroplasia", "queyrat"]
    assert [singular(w) for w in ("nevi", "tags", "psoriasis", "lupus", "milia")] == [
        "nevus",
        "tag",
        "psoriasis",
        "lupus",
        "milium",
    ]


def test_resolver_on_the_packaged_taxonomy(real_tax):
    r = NameResolver(real_tax, "dermnet")
    got = {
        raw: (r(raw).node, r(raw).method)
        for raw in (
            "basal cell carcinoma face",  # in the label map
            "nevi blue",  # word order and plural
            "keratoses seborrheic",
            "basal cell carcinoma nose 3",  # a site and a number left over
            "melanoma acral lentiginous",  # the longest name: the subtype, not melanoma
            "seborrheic keratosis face lesion",
            "skin tags",  # a synonym
            "lichen planus",  # not lichen planus-like keratosis
            "eczema hand",
        )
    }
    assert got == {
        "basal cell carcinoma face": ("basal cell carcinoma", "explicit"),
        "nevi blue": ("blue nevus", "synonym"),
        "keratoses seborrheic": ("seborrheic keratosis", "synonym"),
        "basal cell carcinoma nose 3": ("basal cell carcinoma", "synonym"),
        "melanoma acral lentiginous": ("acral lentiginous melanoma", "synonym"),
        "seborrheic keratosis face lesion": ("seborrheic keratosis", "synonym"),
        "skin tags": ("acrochordon", "synonym"),
        "lichen planus": (None, None),
        "eczema hand": (None, None),
    }


@pytest.fixture()
def small_knowledge(tmp_path) -> tuple:
    """A tree where two nodes fit one DermNet name equally, and one node is out of scope."""
    k = tmp_path / "knowledge"
    k.mkdir()
    (k / "taxonomy.yaml").write_text(
        yaml.safe_dump(
            {
                "root": "skin lesion",
                "nodes": [
                    {"name": "melanoma", "malignancy": "malignant"},
                    {"name": "melanocytic nevus", "malignancy": "benign", "synonyms": ["nevi"]},
                    {"name": "lip nevus", "parent": "melanocytic nevus", "malignancy": "benign"},
                    {"name": "ear nevus", "parent": "melanocytic nevus", "malignancy": "benign"},
                    {"name": "acne vulgaris", "malignancy": "benign"},
                    {"name": "vascular lesion", "malignancy": "benign"},
                ],
            }
        )
    )
    (k / "datasets.yaml").write_text(
        yaml.safe_dump(
            {
                "dermnet": {
                    "labels": {"melanoma": "melanoma", "Vascular Tumors": "vascular lesion"},
                    "out_of_scope": {
                        "acne vulgaris": "inflammatory",
                        "Acne and Rosacea Photos": "inflammatory folder",
                    },
                }
            }
        )
    )
    return load_taxonomy(k / "taxonomy.yaml", k / "datasets.yaml")


def test_dermnet_loader_resolution_and_report(tmp_path, small_knowledge):
    tax = small_knowledge
    root = tmp_path / "dermnet"
    mel, acne, vasc = (
        "Melanoma Skin Cancer Nevi and Moles",
        "Acne and Rosacea Photos",
        "Vascular Tumors",
    )
    for rel in (
        f"train/{mel}/melanoma-1.jpg",  # explicit
        f"train/{mel}/melanoma-2.jpg",
        f"train/{mel}/nevi-face-3.jpg",  # synonym, site left over
        f"train/{mel}/Nevi-4.jpg",
        f"test/{mel}/nevus-ear-lip-5.jpg",  # lip nevus or ear nevus: ambiguous
        f"train/{acne}/acne-vulgaris-6.jpg",  # out of scope: never resolved by its words
        f"train/{acne}/vulgaris-acne-7.jpg",
        f"train/{acne}/07Acne081101.jpg",  # folder label, out of scope
        f"test/{vasc}/08Hemangioma.jpg",  # folder label the map names
    ):
        image(root / rel)
    res = LOADERS["dermnet"](root, tax, seed=0)
    assert res.resolved == {
        "melanoma": "explicit",
        "nevi face": "synonym",
        "nevi": "synonym",
        vasc: "folder",
    }
    assert {s.raw_label: s.node for s in res.samples} == {
        "melanoma": "melanoma",
        "nevi face": "melanocytic nevus",
        "nevi": "melanocytic nevus",
        vasc: "vascular lesion",
    }
    assert dict(res.unmapped) == {
        "nevus ear lip": 1,
        "acne vulgaris": 1,
        "vulgaris acne": 1,
        acne: 1,
    }
    assert res.ambiguous == {"nevus ear lip": ("ear nevus", "lip nevus")}
    entry = summarise(res, tax)
    assert entry["resolution"] == {
        "explicit": {"labels": 1, "samples": 2},
        "synonym": {"labels": 2, "samples": 2},
        "folder": {"labels": 1, "samples": 1},
    }
    assert entry["unmapped_status"] == {
        "nevus ear lip": "ambiguous",
        "acne vulgaris": "out_of_scope",
        "vulgaris acne": "unknown",
        acne: "out_of_scope",
    }
    assert entry["resolved"]["nevi face"] == {"method": "synonym", "node": "melanocytic nevus"}


def test_dermnet_report_table_shows_resolution(tmp_path, capsys, real_tax):
    root = tmp_path / "data"
    cls = root / "dermnet" / "train" / "Melanoma Skin Cancer Nevi and Moles"
    for name in ("malignant-melanoma-1.jpg", "nevi-blue-2.jpg", "nevi-blue-3.jpg", "xyzzy-4.jpg"):
        image(cls / name)
    assert main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "labels resolved by: explicit 1 labels (1 samples), synonym 1 labels (2 samples)" in out
    assert "resolved through the taxonomy's names: nevi blue -> blue nevus 2" in out
    assert "labels not in the label map: xyzzy 1" in out


# --- BCN20000 ---------------------------------------------------------------------------------
def _bcn_isic(tmp_path: Path, *, drop_unknown: bool) -> Path:
    root = tmp_path / "isic" / "BCN20000"
    shutil.copytree(FIX / "bcn_isic" / "BCN20000", root)
    meta = root / "metadata.csv"
    if drop_unknown:
        lines = meta.read_text(encoding="utf-8").splitlines(keepends=True)
        meta.write_text("".join(x for x in lines if "Lentigo NOS" not in x), encoding="utf-8")
    for n in range(53454, 53460):
        image(root / "images" / f"ISIC_{n:07d}.jpg")  # in a subfolder, as some exports unpack
    return root


def _figshare(tmp_path: Path) -> Path:
    root = tmp_path / "figshare" / "BCN20000"
    shutil.copytree(FIX / "bcn" / "BCN20000", root)
    for i in range(1, 5):
        image(root / "bcn_20k_train" / f"BCN_000000000{i}.jpg")
    return root


def _record(s) -> tuple:
    return (s.raw_label, s.node, s.path, s.malignancy, s.split, s.group, s.age, s.sex, s.site)


def test_bcn_isic_archive_export_gives_the_figshare_records(tmp_path, fix_tax):
    fig = LOADERS["BCN20000"](_figshare(tmp_path), fix_tax, seed=5)
    isic = LOADERS["BCN20000"](_bcn_isic(tmp_path, drop_unknown=True), fix_tax, seed=5)
    assert [_record(s) for s in isic.samples] == [_record(s) for s in fig.samples]
    assert [s.id for s in isic.samples] == [f"ISIC_00534{n}" for n in (54, 55, 56, 57)]
    assert isic.notes == [
        "metadata.csv: 1 rows without a diagnosis (the unlabelled test images), not samples"
    ]
    assert isic.empty_labels == [] and isic.excluded() == 0


def test_bcn_isic_unknown_diagnosis_is_unmapped_by_name(tmp_path, fix_tax):
    res = LOADERS["BCN20000"](_bcn_isic(tmp_path, drop_unknown=False), fix_tax, seed=5)
    assert dict(res.unmapped) == {"Lentigo NOS": 1}
    assert len(res.samples) == 4


def test_bcn_metadata_of_neither_export(tmp_path, fix_tax):
    root = tmp_path / "BCN20000"
    root.mkdir()
    (root / "metadata.csv").write_text("image,label\nx.jpg,MEL\n")
    with pytest.raises(DatasetLayoutError) as err:
        LOADERS["BCN20000"](root, fix_tax, seed=0)
    msg = str(err.value)
    assert "metadata.csv" in msg and "['image', 'label']" in msg
    assert "bcn_filename,age_approx" in msg and "isic_id,attribution,copyright_license" in msg
    report = build_report(tmp_path, fix_tax, seed=0)
    assert "neither BCN20000 export" in report["BCN20000"]["error"]
    (root / "metadata.csv").unlink()
    (root / "bcn_20k_train.csv").write_text("bcn_filename,dx\nBCN_1.jpg,MEL\n")
    with pytest.raises(DatasetLayoutError, match="neither BCN20000 export"):
        LOADERS["BCN20000"](root, fix_tax, seed=0)


# --- bad records ------------------------------------------------------------------------------
def test_an_isic_id_with_two_labels_is_invalid_by_name(tmp_path, fix_tax):
    root = tmp_path / "HAM10000"
    shutil.copytree(FIX / "ham_kaggle" / "HAM10000", root)
    with open(root / "HAM10000_metadata.csv", "a", encoding="utf-8") as fh:
        fh.write("HAM_0000118,ISIC_0027419,mel,histo,80.0,male,scalp\n")
        fh.write("HAM_0000118,ISIC_0025030,bkl,histo,80.0,male,scalp\n")
    res = LOADERS["HAM10000"](root, fix_tax, seed=0, check_images=False)
    assert res.invalid == [
        "ISIC_0027419: duplicate record with a different label 'mel' (the first: 'bkl') "
        "(kept the first)",
        "ISIC_0025030: duplicate record (kept the first)",
    ]


def test_paths_outside_the_dataset_folder_are_invalid_never_opened(tmp_path, fix_tax):
    root = tmp_path / "OmniMedVQA"
    shutil.copytree(FIX / "omnimedvqa" / "OmniMedVQA", root)
    qa = root / "OmniMedVQA" / "QA_information" / "Open-access" / "ISIC2019.json"
    items = json.loads(qa.read_text())
    secret = tmp_path / "secret.jpg"
    image(secret)
    for n, path in ((91, "../../secret.jpg"), (92, str(secret))):
        items.append({**items[0], "question_id": f"ISIC2019_00{n}", "image_path": path})
    qa.write_text(json.dumps(items))
    res = LOADERS["OmniMedVQA"](root, fix_tax, seed=0)
    assert res.invalid[-2:] == [
        "ISIC2019/ISIC2019_0091: image_path '../../secret.jpg' leads outside OmniMedVQA/ "
        "(not opened)",
        f"ISIC2019/ISIC2019_0092: image_path '{secret}' leads outside OmniMedVQA/ (not opened)",
    ]
    d7 = shutil.copytree(FIX / "derm7pt" / "derm7pt", tmp_path / "derm7pt")
    meta = d7 / "release_v0" / "meta" / "meta.csv"
    meta.write_text(meta.read_text().replace("NEL/NEL025.JPG", "../../../secret.jpg", 1))
    res = LOADERS["derm7pt"](d7, fix_tax, seed=0, check_images=False)
    assert [x for x in res.invalid if "outside" in x] == [
        "1-clinic: image path '../../../secret.jpg' leads outside images/ (not opened)"
    ]


# --- duplicates on a demo root ----------------------------------------------------------------
@pytest.fixture(scope="module")
def planted(tmp_path_factory, real_tax):
    """A small demo root with three duplicates planted across datasets, one per kind."""
    from skinr1.embedded.demo_data import write_demo
    from skinr1.rules import load_rules

    root = tmp_path_factory.mktemp("dups") / "demo"
    write_demo(root, real_tax, load_rules(real_tax), seed=3, scale=0.1, image_size=32)
    clean = build_report(root, real_tax, seed=1234)
    assert clean["duplicates"]["groups"] == 0
    res = {
        n: LOADERS[n](root / n, real_tax, seed=1234, check_images=False)
        for n in ("HAM10000", "BCN20000", "PAD-UFES-20", "derm12345")
    }
    ham = next(s for s in res["HAM10000"].split("train") if s.raw_label == "nv")
    answers = {"NV": "Melanocytic nevus", "MEL": "Melanoma", "BCC": "Basal cell carcinoma"}
    bcn = next(s for s in res["BCN20000"].split("train") if s.raw_label in answers)
    pad = res["PAD-UFES-20"].split("train")[0]
    d12 = res["derm12345"].split("test")[0]
    base = root / "OmniMedVQA" / "OmniMedVQA"
    folder = "Images/ISIC2019/train"
    # (1) a HAM10000 training image, re-encoded, under its ISIC id, asked as melanoma (a
    # conflicting label); (2) a BCN20000 training image's bytes under another name; (3) a
    # PAD-UFES-20 training image's bytes in place of a derm12345 test image.
    Image.open(ham.image).save(base / folder / f"{Path(ham.image).stem}.jpg", quality=50)
    shutil.copy(bcn.image, base / folder / "ISIC_0099001.jpg")
    shutil.copy(pad.image, d12.image)
    qa = base / "QA_information" / "Open-access" / "ISIC2019.json"
    items = json.loads(qa.read_text())
    template = next(i for i in items if i["question_type"] == "Disease Diagnosis")
    for qid, rel, answer in (
        ("ISIC2019_9001", f"{folder}/{Path(ham.image).stem}.jpg", "Melanoma"),
        ("ISIC2019_9002", f"{folder}/ISIC_0099001.jpg", answers[bcn.raw_label]),
    ):
        options = dict(zip(("option_A", "option_B", "option_C"), answers.values(), strict=True))
        items.append({**template, **options, "option_D": None,
                      "question_id": qid, "image_path": rel, "gt_answer": answer})  # fmt: skip
    qa.write_text(json.dumps(items, indent=4))
    return {"root": root, "ham": ham, "bcn": bcn, "pad": pad, "d12": d12}


def test_planted_duplicates_are_reported(planted, real_tax, capsys):
    assert main([str(planted["root"]), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["duplicates"]
    ham, bcn, pad, d12 = (planted[k] for k in ("ham", "bcn", "pad", "d12"))
    assert (d["groups"], d["images"], d["across_datasets"], d["within_a_dataset"]) == (3, 6, 3, 0)
    assert (d["by_isic_id"], d["by_content_only"]) == (1, 2)
    assert d["places"] == {
        "HAM10000/train + OmniMedVQA/ood": 1,
        "BCN20000/train + OmniMedVQA/ood": 1,
        "PAD-UFES-20/train + derm12345/test": 1,
    }
    assert d["in_training_split"] == {"OmniMedVQA/ood": 2, "derm12345/test": 1}
    isic = Path(ham.image).stem
    assert d["conflicting_labels"] == {
        isic: ["HAM10000/train: melanocytic nevus", "OmniMedVQA/ood: melanoma"]
    }
    assert sorted(d["names"]) == sorted(
        [
            [f"BCN20000/train/{bcn.id}", "OmniMedVQA/ood/ISIC2019/ISIC2019_9002"],
            [f"HAM10000/train/{ham.id}", "OmniMedVQA/ood/ISIC2019/ISIC2019_9001"],
            [f"PAD-UFES-20/train/{pad.id}", f"derm12345/test/{d12.id}"],
        ]
    )
    main([str(planted["root"])])
    out = capsys.readouterr().out
    assert "duplicates: images found more than once 3 (6 copies; 3 across datasets" in out
    assert "left out of test sets): OmniMedVQA/ood 2, derm12345/test 1" in out
    assert f"ISIC ids with different labels (1): {isic} (HAM10000/train" in out


def _params(tmp_path: Path, root: Path, exclude: bool):
    from skinr1.config import load_params

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["root"] = str(root)
    params["data"]["exclude_train_duplicates"] = exclude
    params["evaluation"]["max_samples"] = 0
    params["evaluation"]["skin_types"] = str(root / "annotations.csv")  # the planted demo's own
    path = tmp_path / f"params-{exclude}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return load_params(path)


def test_planted_duplicates_are_excluded_from_the_test_sets(planted, tmp_path, monkeypatch):
    from skinr1.evaluation import question_sets

    monkeypatch.chdir(REPO)  # params.yaml's relative paths
    exclusions: dict = {}
    paper = question_sets(_params(tmp_path, planted["root"], False), exclusions)
    assert exclusions == {}  # the paper's sets: nothing checked
    ours = question_sets(_params(tmp_path, planted["root"], True), exclusions)
    d12 = planted["d12"].image
    expected = {}
    for kind, rows in paper.items():
        gone = [r for r in rows if r["image"] == d12 or r["id"].endswith(("_9001", "_9002"))]
        assert [r["id"] for r in rows if r not in ours[kind]] == [r["id"] for r in gone]
        isic = sum(r["id"].endswith("_9001") for r in gone)
        expected[kind] = {"questions": len(rows), "removed": len(gone), "isic_id": isic,
                          "content": len(gone) - isic}  # fmt: skip
    assert exclusions == expected
    assert [exclusions[k]["removed"] for k in ("disease", "lesion", "ddx", "ood")] == [1, 1, 1, 2]
    assert exclusions["ood"] == {"questions": len(paper["ood"]), "removed": 2, "isic_id": 1,
                                 "content": 1}  # fmt: skip


# --- benchmark --------------------------------------------------------------------------------
def test_benchmark_smoke(tmp_path):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import bench_datasets
    finally:
        sys.path.pop(0)
    counts = bench_datasets.generate(tmp_path / "tree", scale=0.004)
    report, seconds = bench_datasets.measure(tmp_path / "tree")
    assert seconds > 0
    for name, n in counts.items():  # every record once: usable or unmapped, nothing broken
        e = report[name]
        assert sum(e["samples"].values()) + sum(e["unmapped"].values()) == n, name
        assert (e["missing_images"], e["unreadable_images"], e["invalid"]) == (0, 0, 0), name
    assert set(report["dermnet"]["unmapped"]) == {"rosacea"}
    assert report["dermnet"]["resolution"]["synonym"]["labels"] == 2  # nevi blue, keratoses ...
    assert report["duplicates"]["groups"] == bench_datasets.PLANTED
