"""Loaders against fixture files that copy the real downloads' formats (datasets.md).

The metadata fixtures live in tests/fixtures/datasets/<variant>/<dataset folder>/ with the
real headers, example rows, quoting, byte-order marks and nesting; the images are made here,
tiny, in tmp_path — including missing and corrupt ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from skinr1.datasets import LOADERS, load_all, to_hf_dataset
from skinr1.datasets.base import DatasetLayoutError
from skinr1.datasets.dermnet import fine_diagnosis
from skinr1.datasets.omnimedvqa import load_questions, normalise_answer
from skinr1.datasets.splits import groups_across_splits
from skinr1.datasets.textbook import TextbookError, load_cases
from skinr1.taxonomy import load_taxonomy

FIX = Path(__file__).parent / "fixtures" / "datasets"


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy(FIX / "knowledge" / "taxonomy.yaml", FIX / "knowledge" / "datasets.yaml")


def variant(name: str, tmp: Path) -> Path:
    shutil.copytree(FIX / name, tmp, dirs_exist_ok=True)
    return tmp


def image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.new("RGB", (8, 6), (180, 120, 90)).save(path, format=fmt)


def corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8 this is not a complete JPEG")


def by_id(result):
    return {s.id: s for s in result.samples}


def labelled_total(result) -> int:
    return (
        len(result.samples)
        + sum(result.unmapped.values())
        + len(result.missing_images)
        + len(result.unreadable_images)
        + len(result.invalid)
    )


# --- HAM10000 ---------------------------------------------------------------------------------
def test_ham_kaggle_counts_every_row_once(tmp_path, tax):
    root = variant("ham_kaggle", tmp_path) / "HAM10000"
    for i in ("ISIC_0027419", "ISIC_0025030"):
        image(root / "HAM10000_images_part_1" / f"{i}.jpg")
    # Lower-case folder name, as in some Kaggle unzips.
    for i in ("ISIC_0026769", "ISIC_0025837", "ISIC_0029396"):
        image(root / "ham10000_images_part_2" / f"{i}.jpg")
    corrupt(root / "ham10000_images_part_2" / "ISIC_0029176.jpg")
    res = LOADERS["HAM10000"](root, tax, seed=1)
    assert sorted(by_id(res)) == ["ISIC_0025030", "ISIC_0025837", "ISIC_0026769", "ISIC_0027419"]
    assert dict(res.unmapped) == {"xyz": 1}
    assert [Path(p).name for p in res.missing_images] == ["ISIC_0031633.jpg"]
    assert [Path(p).name for p in res.unreadable_images] == ["ISIC_0029176.jpg"]
    assert res.empty_labels == ["ISIC_0025276"]
    assert labelled_total(res) == 7  # 8 rows, one without a label
    s = by_id(res)["ISIC_0027419"]
    assert (s.dataset, s.raw_label, s.node, s.path, s.malignancy) == (
        "HAM10000",
        "bkl",
        "benign keratosis-like lesion",
        ("benign keratosis-like lesion",),
        "benign",
    )
    assert (s.age, s.sex, s.site, s.group, s.modality) == (
        80.0,
        "male",
        "scalp",
        "HAM_0000118",
        "dermoscopic",
    )
    assert by_id(res)["ISIC_0025837"].site == "lower extremity"
    assert Path(s.image).is_file()
    # No ISIC 2018 test set here: a grouped 6:2:2 split, said so in a note.
    assert any("ISIC2018_Task3_Test_GroundTruth.csv" in n for n in res.notes)
    assert by_id(res)["ISIC_0027419"].split == by_id(res)["ISIC_0025030"].split
    assert groups_across_splits(res.samples) == {}


def test_ham_header_check_is_optional(tmp_path, tax):
    root = variant("ham_kaggle", tmp_path) / "HAM10000"
    corrupt(root / "HAM10000_images_part_1" / "ISIC_0029176.jpg")
    res = LOADERS["HAM10000"](root, tax, seed=1, check_images=False)
    assert [s.id for s in res.samples] == ["ISIC_0029176"]  # exists, so it is not "missing"
    assert res.unreadable_images == []


def test_ham_dataverse_with_isic2018_test_set(tmp_path, tax):
    root = variant("ham_dataverse", tmp_path) / "HAM10000"
    for i in ("ISIC_0027419", "ISIC_0025030", "ISIC_0026769", "ISIC_0031633", "ISIC_0029176"):
        image(root / "HAM10000_images_part_1" / f"{i}.jpg")
    for i in ("ISIC_0034524", "ISIC_0034525"):
        image(root / "ISIC2018_Task3_Test_Images" / f"{i}.jpg")
    res = LOADERS["HAM10000"](root, tax, seed=3)
    split = {s.id: s.split for s in res.samples}
    assert {i for i, sp in split.items() if sp == "test"} == {"ISIC_0034524", "ISIC_0034525"}
    assert {split[i] for i in split if not i.startswith("ISIC_00345")} <= {"train", "val"}
    assert by_id(res)["ISIC_0034525"].raw_label == "mel"
    assert by_id(res)["ISIC_0034525"].group == "HAMTEST_0000002"
    assert by_id(res)["ISIC_0031633"].age is None
    assert res.notes == []


def test_ham_challenge_one_hot_ground_truth(tmp_path, tax):
    root = variant("ham_challenge", tmp_path) / "HAM10000"
    image(root / "HAM10000_images_part_1" / "ISIC_0027419.jpg")
    image(root / "HAM10000_images_part_2" / "ISIC_0031633.jpg")
    for i in ("ISIC_0034524", "ISIC_0034525", "ISIC_0034526", "ISIC_0034527"):
        image(root / "ISIC2018_Task3_Test_Input" / f"{i}.jpg")
    res = LOADERS["HAM10000"](root, tax, seed=0)
    test = {s.id: (s.raw_label, s.node) for s in res.split("test")}
    assert test == {
        "ISIC_0034524": ("nv", "melanocytic nevus"),
        "ISIC_0034525": ("mel", "melanoma"),
        "ISIC_0034526": ("vasc", "vascular lesion"),
    }
    assert res.empty_labels == ["ISIC_0034527"]  # an all-zero one-hot row names no class


def test_ham_wrong_header_and_missing_metadata(tmp_path, tax):
    root = tmp_path / "HAM10000"
    root.mkdir()
    with pytest.raises(DatasetLayoutError, match="HAM10000_metadata.csv"):
        LOADERS["HAM10000"](root, tax, seed=0)
    (root / "HAM10000_metadata.csv").write_text("lesion,image,diagnosis\nHAM_1,ISIC_1,nv\n")
    with pytest.raises(DatasetLayoutError) as err:
        LOADERS["HAM10000"](root, tax, seed=0)
    msg = str(err.value)
    assert "HAM10000_metadata.csv" in msg and "['image_id', 'dx']" in msg
    assert "lesion_id,image_id,dx,dx_type,age,sex,localization" in msg


# --- PAD-UFES-20 ------------------------------------------------------------------------------
def test_pad_nested_parts_and_patient_groups(tmp_path, tax):
    root = variant("pad", tmp_path) / "PAD-UFES-20"
    for part, name in (
        (1, "PAT_46_881_14.png"),
        (2, "PAT_46_882_15.png"),
        (3, "PAT_1516_1765_530.png"),
        (3, "PAT_771_1491_390.png"),
    ):
        image(root / "images" / f"imgs_part_{part}" / f"imgs_part_{part}" / name)
    res = LOADERS["PAD-UFES-20"](root, tax, seed=2)
    s = by_id(res)
    assert sorted(s) == ["PAT_1516_1765_530", "PAT_46_881_14", "PAT_46_882_15", "PAT_771_1491_390"]
    assert [Path(p).name for p in res.missing_images] == ["PAT_9_22_40.png"]
    a = s["PAT_46_881_14"]
    assert (a.node, a.modality, a.age, a.sex, a.site, a.group) == (
        "basal cell carcinoma",
        "clinical",
        55.0,
        "female",
        "neck",
        "PAT_46",
    )
    assert s["PAT_1516_1765_530"].sex is None  # the sparse questionnaire row
    assert s["PAT_46_881_14"].split == s["PAT_46_882_15"].split  # one patient, one split
    assert s["PAT_46_882_15"].malignancy == "precancerous in situ"
    # fitspatrick "3.0" -> 3; the sparse row's empty cell -> None, counted (all rows, PAT_9 too)
    assert (a.skin_type, s["PAT_1516_1765_530"].skin_type) == (3, None)
    assert dict(res.unannotated) == {"fitspatrick: <empty>": 1}


# --- BCN20000 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", ["bcn_20k_train", "BCN_20k_train/bcn_20k_train"])
def test_bcn_layouts_and_unlabelled_test_release(tmp_path, tax, folder):
    root = variant("bcn", tmp_path) / "BCN20000"
    for i in range(1, 5):
        image(root / folder / f"BCN_000000000{i}.jpg")
    image(root / "bcn_20k_test" / "BCN_0000012001.jpg")
    res = LOADERS["BCN20000"](root, tax, seed=5)
    s = by_id(res)
    assert sorted(s) == [f"BCN_000000000{i}" for i in range(1, 5)]
    assert res.empty_labels == ["BCN_0000000005"]
    assert res.notes == ["bcn_20k_test.csv: 2 rows of the unlabelled test release, not samples"]
    assert (s["BCN_0000000001"].node, s["BCN_0000000001"].site, s["BCN_0000000001"].age) == (
        "melanoma",
        "anterior torso",
        55.0,
    )
    assert s["BCN_0000000001"].split == s["BCN_0000000002"].split  # same lesion_id


# --- DERM12345 --------------------------------------------------------------------------------
def _derm12345_images(root: Path, ids: dict[str, str], parts: dict[str, str]) -> None:
    for image_id, label in ids.items():
        image(root / parts[label] / label / f"{image_id}.jpg")


def test_derm12345_csv_labels_across_both_train_parts(tmp_path, tax):
    root = variant("derm12345_csv", tmp_path) / "derm12345"
    parts = {
        "alm": "derm12345_train_part_1",
        "anm": "derm12345_train_part_1",
        "cb": "derm12345_train_part_2",
        "sk": "derm12345_train_part_2",
        "ks": "derm12345_train_part_2",
        "bcc": "derm12345_test",
    }
    _derm12345_images(
        root,
        {
            "img_00001": "alm",
            "img_00002": "anm",
            "img_00003": "cb",
            "img_00004": "cb",
            "img_00005": "sk",
            "img_00006": "ks",
            "img_00101": "bcc",
        },
        parts,
    )
    res = LOADERS["derm12345"](root, tax, seed=0)
    s = by_id(res)
    assert sorted(s) == [
        "img_00001",
        "img_00002",
        "img_00003",
        "img_00004",
        "img_00005",
        "img_00101",
    ]
    assert dict(res.unmapped) == {"ks": 1}
    assert [Path(p).name for p in res.missing_images] == ["img_00102.jpg"]
    assert [x.id for x in res.split("test")] == ["img_00101"]
    assert {x.split for x in res.samples if x.id != "img_00101"} <= {"train", "val"}
    assert s["img_00003"].split == s["img_00004"].split  # patient_003
    assert (s["img_00001"].node, s["img_00001"].group) == ("melanoma", "patient_001")


def test_derm12345_dataverse_tab_with_bom_and_quotes(tmp_path, tax):
    root = variant("derm12345_tab", tmp_path) / "derm12345"
    parts = {
        "alm": "derm12345_train_part_1",
        "cb": "derm12345_train_part_2",
        "sk": "derm12345_train_part_2",
        "bcc": "derm12345_test",
    }
    _derm12345_images(
        root, {"img_00001": "alm", "img_00003": "cb", "img_00005": "sk", "img_00101": "bcc"}, parts
    )
    res = LOADERS["derm12345"](root, tax, seed=0)
    assert {s.id: s.raw_label for s in res.samples} == {
        "img_00001": "alm",
        "img_00003": "cb",
        "img_00005": "sk",
        "img_00101": "bcc",
    }
    assert res.excluded() == 0


def test_derm12345_names_the_missing_metadata_file(tmp_path, tax):
    root = variant("derm12345_csv", tmp_path) / "derm12345"
    (root / "derm12345_metadata_test.csv").unlink()
    with pytest.raises(DatasetLayoutError, match="derm12345_metadata_test.csv"):
        LOADERS["derm12345"](root, tax, seed=0)


# --- Derm7pt ----------------------------------------------------------------------------------
def _derm7pt(tmp_path: Path) -> Path:
    root = variant("derm7pt", tmp_path) / "derm7pt"
    images = root / "release_v0" / "images"
    for rel in (
        "NEL/NEL025.JPG",
        "NEL/Nel026.jpg",
        "Fgl/Fgl001.jpg",
        "Fgl/Fgl002.jpg",
        "Gal/Gal010.jpg",
        "Gal/Gal011.jpg",
        "Abl/Abl001.jpg",
        "Abl/Abl002.jpg",
        "Nbl/Nbl003.jpg",
    ):
        image(images / rel)  # Fgl002 is .JPG in meta.csv but .jpg on disk; Nbl004 is missing
    return root


def test_derm7pt_row_positions_two_photos_per_case(tmp_path, tax):
    res = LOADERS["derm7pt"](_derm7pt(tmp_path), tax, seed=0)
    s = by_id(res)
    assert sorted(s) == [
        "1-clinic",
        "1-derm",
        "2-clinic",
        "2-derm",
        "3-clinic",
        "3-derm",
        "5-clinic",
    ]
    # Positions are 0-based: position 1 is case_num 2 (train), position 2 is case 3 (val).
    assert {i: s[i].split for i in ("1-derm", "2-derm", "3-derm", "5-clinic")} == {
        "1-derm": "test",
        "2-derm": "train",
        "3-derm": "val",
        "5-clinic": "train",
    }
    assert (s["1-clinic"].modality, s["1-derm"].modality) == ("clinical", "dermoscopic")
    assert s["1-clinic"].group == s["1-derm"].group == "case-1"
    assert s["3-derm"].path == ("melanoma", "melanoma in situ")
    assert s["3-derm"].malignancy == "precancerous in situ"
    assert dict(res.unmapped) == {"miscellaneous": 2}
    assert [p.split("/")[-1] for p in res.missing_images] == ["Nbl004.jpg"]
    assert Path(s["2-derm"].image).name == "Fgl002.jpg"
    # the 7-point checklist as vocabulary features, shared by both photos of a case
    assert s["1-clinic"].features == s["1-derm"].features == ("arborizing vessels",)
    assert s["2-derm"].features == ("typical pigment network", "regular dots and globules")
    assert s["3-derm"].features == (
        "atypical pigment network",
        "regression structures",
        "irregular dots and globules",
    )
    assert not res.unannotated


def test_derm7pt_bad_index_files(tmp_path, tax):
    root = _derm7pt(tmp_path)
    meta = root / "release_v0" / "meta"
    (meta / "train_indexes.csv").write_text("indexes\n1\n")  # position 4 (case 5) in no file
    res = LOADERS["derm7pt"](root, tax, seed=0)
    assert res.invalid == [
        "5-clinic: row 4 is in no split file",
        "5-derm: row 4 is in no split file",
    ]
    assert labelled_total(res) == 10
    (meta / "test_indexes.csv").write_text("indexes\n0\n5\n")
    with pytest.raises(DatasetLayoutError, match="row position 5 outside meta.csv's 5 rows"):
        LOADERS["derm7pt"](root, tax, seed=0)
    (meta / "valid_indexes.csv").unlink()
    with pytest.raises(DatasetLayoutError, match="valid_indexes.csv"):
        LOADERS["derm7pt"](root, tax, seed=0)


# --- DermNet ----------------------------------------------------------------------------------
def test_dermnet_fine_names():
    assert fine_diagnosis("hidradenitis-suppurativa-99.jpg") == "hidradenitis suppurativa"
    assert fine_diagnosis("basal-cell-carcinoma-face-12.jpg") == "basal cell carcinoma face"
    assert fine_diagnosis("melanoma-1.JPG") == "melanoma"
    assert fine_diagnosis("07Acne081101.jpg") is None
    assert fine_diagnosis("03EczemaExcoriated.jpg") is None


@pytest.mark.parametrize("nest", ["", "archive"])
def test_dermnet_kaggle_layout(tmp_path, tax, nest):
    root = tmp_path / "dermnet"
    base = root / nest if nest else root
    mel = "Melanoma Skin Cancer Nevi and Moles"
    acne = "Acne and Rosacea Photos"
    for rel in (
        f"train/{mel}/melanoma-1.jpg",
        f"train/{mel}/melanoma-2.jpg",
        f"train/{mel}/melanoma-4.jpg",
        f"train/{acne}/acne-vulgaris-3.jpg",
        f"train/{acne}/07Acne081101.jpg",
        "train/Actinic Keratosis Basal Cell Carcinoma and other Malignant Lesions/"
        "basal-cell-carcinoma-face-12.jpg",
        "test/Seborrheic Keratoses and other Benign Tumors/seborrheic-keratosis-5.jpg",
    ):
        image(base / rel)
    corrupt(base / "train" / mel / "melanoma-3.jpg")
    res = LOADERS["dermnet"](root, tax, seed=0)
    # "basal cell carcinoma face" is not in the label map: the taxonomy's name, a site left over
    assert sorted(s.raw_label for s in res.samples) == [
        "basal cell carcinoma face",
        *["melanoma"] * 3,
        "seborrheic keratosis",
    ]
    assert res.resolved == {
        "melanoma": "explicit",
        "basal cell carcinoma face": "synonym",
        "seborrheic keratosis": "explicit",
    }
    assert dict(res.unmapped) == {"acne vulgaris": 1, acne: 1}
    assert len(res.unreadable_images) == 1
    assert [s.id for s in res.split("test")] == [
        "test/Seborrheic Keratoses and other Benign Tumors/seborrheic-keratosis-5"
    ]
    assert {s.split for s in res.samples if not s.id.startswith("test/")} <= {"train", "val"}
    assert all(s.modality == "clinical" for s in res.samples)
    assert any("1 file names name no diagnosis" in n for n in res.notes)


def test_dermnet_without_train_or_test(tmp_path, tax):
    (tmp_path / "dermnet" / "images").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="train/<class folder>"):
        LOADERS["dermnet"](tmp_path / "dermnet", tax, seed=0)


# --- OmniMedVQA -------------------------------------------------------------------------------
def _omni(tmp_path: Path) -> Path:
    root = variant("omnimedvqa", tmp_path) / "OmniMedVQA"
    for n in (1, 2, 3, 4):
        image(root / "OmniMedVQA" / "Images" / "ISIC2019" / "train" / f"ISIC_006927{n}.jpg")
    return root


def test_omnimedvqa_disease_diagnosis_subset(tmp_path, tax):
    res = LOADERS["OmniMedVQA"](_omni(tmp_path), tax, seed=0)
    assert {s.id: (s.raw_label, s.node, s.split) for s in res.samples} == {
        "ISIC2019/ISIC2019_0001": ("melanoma", "melanoma", "test"),
        "ISIC2019/ISIC2019_0002": ("melanocytic nevus", "melanocytic nevus", "test"),
    }
    assert dict(res.unmapped) == {"vascular lesion": 1}
    assert [p.split("/")[-1] for p in res.missing_images] == ["ISIC_0069299.jpg"]
    assert res.invalid == [
        "ISIC2019/ISIC2019_0004: answer 'Squamous cell carcinoma' is not among its options"
    ]
    notes = "\n".join(res.notes)
    assert "Fitzpatrick 17k.json: 1 items left out as in the paper" in notes
    assert "PAD-UFES-20.json: 1 items left out as in the paper" in notes
    assert "Modality Recognition 1" in notes
    assert "1 QA files outside the dermoscopy subset ignored" in notes


def test_omnimedvqa_questions(tmp_path, tax):
    questions, res = load_questions(_omni(tmp_path), tax)
    q = {x.id: x for x in questions}
    assert sorted(q) == [
        "ISIC2019/ISIC2019_0001",
        "ISIC2019/ISIC2019_0002",
        "ISIC2019/ISIC2019_0003",
    ]  # 0003 is unmapped but still a question
    first = q["ISIC2019/ISIC2019_0001"]
    assert (first.answer, first.answer_text, first.source) == ("B", "Melanoma", "ISIC2019")
    assert list(first.options) == ["A", "B", "C", "D"]
    assert q["ISIC2019/ISIC2019_0002"].options == {"A": "Melanocytic nevus", "B": "Melanoma"}
    assert q["ISIC2019/ISIC2019_0002"].answer == "A"
    assert Path(first.image).is_file()
    assert len(res.samples) == 2


def test_omnimedvqa_answer_normalisation_and_layout_error(tmp_path, tax):
    assert normalise_answer(" Benign  Keratosis. ") == "benign keratosis"
    (tmp_path / "OmniMedVQA" / "Images").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="QA_information"):
        LOADERS["OmniMedVQA"](tmp_path / "OmniMedVQA", tax, seed=0)


# --- registry, textbook, HF export ------------------------------------------------------------
def test_load_all_reports_absent_folders_as_none(tmp_path, tax):
    root = variant("ham_kaggle", tmp_path)
    out = load_all(root, tax, seed=0)
    assert list(out) == list(LOADERS)
    assert out["HAM10000"] is not None and len(out["HAM10000"].missing_images) == 6
    assert all(out[n] is None for n in LOADERS if n != "HAM10000")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_all(root, tax, seed=0, names=["ISIC"])


def test_textbook_cases(tmp_path, tax):
    root = variant("textbook", tmp_path)
    image(root / "textbook" / "images" / "tb-mel-01.png")
    image(root / "textbook" / "images" / "tb-nev-01.png")
    cases = load_cases(root, tax)
    assert [(c.id, c.diagnosis) for c in cases] == [
        ("tb-mel-01", "melanoma"),
        ("tb-nev-01", "melanocytic nevus"),
    ]
    assert Path(cases[0].image).is_file()
    path = root / "textbook" / "cases.jsonl"
    path.write_text(
        path.read_text() + '{"id": "x", "image": "images/tb-mel-01.png", '
        '"rationale": "r", "diagnosis": "lupus"}\n'
    )
    with pytest.raises(TextbookError, match=r"cases.jsonl:4: diagnosis 'lupus'"):
        load_cases(root, tax)


def test_hf_dataset_has_an_image_column(tmp_path, tax):
    root = variant("pad", tmp_path) / "PAD-UFES-20"
    image(root / "images" / "imgs_part_1" / "imgs_part_1" / "PAT_46_881_14.png")
    res = LOADERS["PAD-UFES-20"](root, tax, seed=0)
    ds = to_hf_dataset(res.samples)
    assert ds[0]["image"].size == (8, 6)
    assert ds[0]["path"] == ["basal cell carcinoma"] and ds[0]["group"] == "PAT_46"


def test_read_table_quoting_bom_and_delimiters(tmp_path):
    from skinr1.datasets.base import image_problem, read_table

    tab = tmp_path / "meta.tab"
    tab.write_bytes(
        '\ufeff"a"\t"b"\r\n"x\ty"\t"line one\r\nline two"\r\n\r\n1\t\r\n'.encode("utf-8")
    )
    # A tab and a line break inside quotes stay in their value (the break read as "\n").
    assert read_table(tab, ["a", "b"], ["a", "b"]) == [
        {"a": "x\ty", "b": "line one\nline two"},
        {"a": "1", "b": ""},
    ]
    latin = tmp_path / "meta.csv"
    latin.write_bytes("a,b\nS\xe3o Paulo,2\n".encode("latin-1"))
    assert read_table(latin, ["a"], ["a", "b"]) == [{"a": "São Paulo", "b": "2"}]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetLayoutError, match="empty.csv: file is empty; expected a header"):
        read_table(empty, ["a"], ["a", "b"])
    zero = tmp_path / "zero.jpg"
    zero.write_bytes(b"")
    assert (image_problem(zero), image_problem(tmp_path / "none.jpg")) == ("unreadable", "missing")
