"""Skin type and annotated features: read from the real formats, carried to question rows, and
written by the demo generator as the ``annotations.csv`` sidecar."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
from PIL import Image

from skinr1.datasets import LOADERS, load_all
from skinr1.datasets.annotations import (
    ANNOTATIONS,
    AnnotationError,
    fill_skin_types,
    load_annotations,
    root_annotations,
    write_annotations,
)
from skinr1.datasets.base import Sample, parse_skin_type
from skinr1.datasets.derm7pt import ANNOTATED_VOCABULARY, CHECKLIST, checklist_features
from skinr1.datasets.derm7pt import HEADER as DERM7PT_HEADER
from skinr1.datasets.pad_ufes20 import HEADER as PAD_HEADER
from skinr1.ddx import load_ddx
from skinr1.embedded.demo_data import seven_point, write_demo
from skinr1.mcq import (
    ddx_question,
    disease_question,
    from_ood,
    hierarchical_question,
    lesion_question,
    row_features,
)
from skinr1.rules import load_rules, load_vocabulary
from skinr1.taxonomy import load_taxonomy

FIX = Path(__file__).parent / "fixtures" / "datasets"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@pytest.fixture(scope="module")
def fix_tax():
    return load_taxonomy(FIX / "knowledge" / "taxonomy.yaml", FIX / "knowledge" / "datasets.yaml")


@pytest.fixture(scope="module")
def real_tax():
    return load_taxonomy()


def image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (180, 120, 90)).save(
        path, format="PNG" if path.suffix.lower() == ".png" else "JPEG"
    )


def write_rows(path: Path, header, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


# --- PAD-UFES-20 fitspatrick ------------------------------------------------------------------
def _pad_row(patient: str, lesion: str, n: str, fitspatrick: str, dx: str = "BCC") -> list[str]:
    """The first real example row (datasets.md §2) with another image and skin type."""
    return [patient, lesion, "False", "False", "POMERANIA", "POMERANIA", "55", "False", "FEMALE",
            "True", "True", "True", "True", fitspatrick, "NECK", "6.0", "5.0", dx, "True", "True",
            "False", "True", "True", "True", f"{patient}_{lesion}_{n}.png", "True"]  # fmt: skip


def test_parse_skin_type():
    assert [parse_skin_type(v) for v in ("3.0", "3", " 6 ", "1.0")] == [3, 3, 6, 1]
    for v in ("", None, "UNK", "nan", "7", "0", "-1", "3.5", "III"):
        assert parse_skin_type(v) is None, v


def test_pad_fitspatrick_to_skin_type_and_counted(tmp_path, fix_tax):
    root = tmp_path / "PAD-UFES-20"
    sparse = "PAT_1516,1765,,,,,8,,,,,,,,ARM,,,NEV,False,False,False,False,False,False"
    rows = [
        _pad_row("PAT_46", "881", "14", "3.0"),
        sparse.split(",") + ["PAT_1516_1765_530.png", "False"],  # real sparse row: empty
        _pad_row("PAT_771", "1491", "390", "UNK"),
        _pad_row("PAT_9", "22", "40", "7"),
        _pad_row("PAT_10", "23", "41", "6.0", "SEK"),
        _pad_row("PAT_11", "24", "42", "2"),
    ]
    write_rows(root / "metadata.csv", PAD_HEADER, rows)
    for r in rows:
        image(root / "images" / "imgs_part_1" / "imgs_part_1" / r[-2])
    res = LOADERS["PAD-UFES-20"](root, fix_tax, seed=0)
    assert {s.id: s.skin_type for s in res.samples} == {
        "PAT_46_881_14": 3,
        "PAT_1516_1765_530": None,
        "PAT_771_1491_390": None,
        "PAT_9_22_40": None,
        "PAT_10_23_41": 6,
        "PAT_11_24_42": 2,
    }
    assert dict(res.unannotated) == {
        "fitspatrick: <empty>": 1,
        "fitspatrick: 'UNK'": 1,
        "fitspatrick: '7'": 1,
    }
    assert res.excluded() == 0  # an untyped record is still a sample
    assert all(s.features is None for s in res.samples)  # PAD-UFES-20 annotates no features


# --- Derm7pt checklist -> features ------------------------------------------------------------
def _d7_row(case: int, dx: str, checklist: dict[str, str]) -> list[str]:
    values = {
        "case_num": str(case), "diagnosis": dx, "seven_point_score": "0",
        **{c: "absent" for c in CHECKLIST}, "pigmentation": "absent",
        "level_of_diagnostic_difficulty": "medium", "elevation": "flat", "location": "back",
        "sex": "female", "management": "excision",
        "clinic": f"Gal/Gal{2 * case:03d}.jpg", "derm": f"Gal/Gal{2 * case + 1:03d}.JPG",
        "case_id": "", "notes": "",
    }  # fmt: skip
    values.update(checklist)
    return [values[c] for c in DERM7PT_HEADER]


def test_derm7pt_checklist_to_features(tmp_path, fix_tax):
    root = tmp_path / "derm7pt"
    base = root / "release_v0"
    full = {
        "pigment_network": "atypical",
        "streaks": "irregular",
        "pigmentation": "diffuse irregular",
        "regression_structures": "blue areas",
        "dots_and_globules": "irregular",
        "blue_whitish_veil": "present",
        "vascular_structures": "dotted",
    }
    nevus = {
        "pigment_network": "typical",
        "streaks": "regular",
        "dots_and_globules": "regular",
        "vascular_structures": "comma",  # a vessel the vocabulary lacks: nothing
    }
    odd_case = {"regression_structures": "combinations", "vascular_structures": "Linear Irregular"}
    rows = [
        _d7_row(1, "melanoma (in situ)", full),
        _d7_row(2, "clark nevus", nevus),
        _d7_row(3, "basal cell carcinoma", {"vascular_structures": "arborizing"}),
        _d7_row(4, "seborrheic keratosis", odd_case),
        _d7_row(5, "seborrheic keratosis", {}),  # all absent: annotated, nothing present
        _d7_row(6, "clark nevus", {"streaks": "wobbly"}),  # unknown value
        _d7_row(7, "clark nevus", {"vascular_structures": ""}),  # empty cell
    ]
    write_rows(base / "meta" / "meta.csv", DERM7PT_HEADER, rows)
    for r in rows:
        for rel in (r[DERM7PT_HEADER.index("clinic")], r[DERM7PT_HEADER.index("derm")]):
            image(base / "images" / rel)
    res = LOADERS["derm7pt"](root, fix_tax, seed=0)
    feats = {s.id: s.features for s in res.samples}
    assert len(feats) == 14
    assert feats["1-clinic"] == feats["1-derm"]
    assert feats["1-derm"] == (
        "atypical pigment network",
        "irregular streaks",
        "regression structures",
        "irregular dots and globules",
        "blue-white veil",
        "dotted vessels",
    )
    assert feats["2-derm"] == ("typical pigment network", "regular streaks",
                               "regular dots and globules")  # fmt: skip
    assert feats["3-derm"] == ("arborizing vessels",)
    assert feats["4-derm"] == ("regression structures", "linear irregular vessels")
    assert feats["5-derm"] == ()
    assert feats["6-derm"] is None and feats["7-clinic"] is None
    assert dict(res.unannotated) == {"streaks: 'wobbly'": 1, "vascular_structures: <empty>": 1}
    assert all(s.skin_type is None for s in res.samples)


def test_derm7pt_annotated_vocabulary_is_in_the_closed_vocabulary():
    assert ANNOTATED_VOCABULARY == {
        "typical pigment network", "atypical pigment network", "regular streaks",
        "irregular streaks", "regression structures", "regular dots and globules",
        "irregular dots and globules", "blue-white veil", "arborizing vessels", "dotted vessels",
        "hairpin vessels", "linear irregular vessels",
    }  # fmt: skip
    assert ANNOTATED_VOCABULARY <= set(load_vocabulary()["structures"])
    assert "pigmentation" not in CHECKLIST


def test_demo_checklist_reads_back_the_drawn_features(real_tax):
    """What the demo writes into meta.csv (seven_point) the loader turns back into the drawn
    structures the checklist can record; the checklist's own limits are the only losses."""
    vessels = {f for f in ANNOTATED_VOCABULARY if f.endswith("vessels")}
    lossy = {"glomerular vessels", "peripheral fine network"}  # recorded as dotted / typical
    for node, rule in load_rules(real_tax).rules.items():
        drawn = set(rule.features.structures)
        got, problems = checklist_features(seven_point(rule.features))
        assert problems == [] and set(got) <= ANNOTATED_VOCABULARY, node
        if not drawn & lossy and len(drawn & vessels) <= 1:  # one vessel per case
            assert set(got) == drawn & ANNOTATED_VOCABULARY, node
    dermatofibroma = load_rules(real_tax).rules["dermatofibroma"].features
    assert checklist_features(seven_point(dermatofibroma))[0] == ("typical pigment network",)


# --- the annotations sidecar ------------------------------------------------------------------
def test_annotations_round_trip_and_fill(tmp_path):
    root = tmp_path / "root"
    tones = {"HAM10000/part_1/ISIC_0000001.jpg": 2, "textbook/images/a b.png": 6}
    write_annotations(root / ANNOTATIONS, tones)
    assert (root / ANNOTATIONS).read_text().splitlines() == [
        "image,fitzpatrick",
        "HAM10000/part_1/ISIC_0000001.jpg,2",
        "textbook/images/a b.png,6",
    ]
    ann = load_annotations(root / ANNOTATIONS)
    assert ann == {
        str((root / "HAM10000/part_1/ISIC_0000001.jpg").absolute()): 2,
        str((root / "textbook/images/a b.png").absolute()): 6,
    }
    assert root_annotations(root) == ann and root_annotations(tmp_path) == {}

    def sample(sid: str, rel: str, skin_type=None) -> Sample:
        return Sample(sid, str(root / rel), "X", "r", "n", ("n",), "benign", "test",
                      skin_type=skin_type)  # fmt: skip

    filled = fill_skin_types(
        [
            sample("a", "HAM10000/part_1/ISIC_0000001.jpg"),
            sample("b", "textbook/images/a b.png", skin_type=3),  # the loader's value wins
            sample("c", "elsewhere.jpg"),
        ],
        ann,
    )
    assert [s.skin_type for s in filled] == [2, 3, None]


def test_annotations_bad_header_and_rows_name_the_file(tmp_path):
    path = tmp_path / ANNOTATIONS
    path.write_text("image,tone\na.jpg,3\n")
    with pytest.raises(
        AnnotationError, match=r"annotations.csv: header .* lacks \['fitzpatrick'\]"
    ):
        load_annotations(path)
    path.write_text("")
    with pytest.raises(AnnotationError, match="expected a header: image,fitzpatrick"):
        load_annotations(path)
    path.write_text(
        "\ufeffimage,fitzpatrick\na.jpg,3.0\nb.jpg,\n\nc.jpg,7\n../d.jpg,2\nd.jpg,UNK\na.jpg,4\n"
    )
    with pytest.raises(AnnotationError) as err:
        load_annotations(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 4 bad row(s): line 5: fitzpatrick '7' is not a whole number")
    assert "line 6: image '../d.jpg'" in msg and "line 7: fitzpatrick 'UNK'" in msg
    assert "line 8: a.jpg has type 4 and, earlier, 3" in msg
    path.write_text("image,fitzpatrick,source\na.jpg,3.0,x\nb.jpg,,x\na.jpg,3,y\n")
    assert load_annotations(path) == {str((tmp_path / "a.jpg").absolute()): 3}  # b: untyped


# --- question rows ----------------------------------------------------------------------------
def test_question_rows_carry_skin_type_and_features(real_tax):
    ddx = load_ddx(real_tax)

    def sample(sid, node, dataset, **kw) -> Sample:
        return Sample(sid, f"/d/{sid}.jpg", dataset, node, node, tuple(real_tax.path(node)),
                      real_tax.malignancy(node), "test", **kw)  # fmt: skip

    typed = sample("s1", "dermal nevus", "derm12345", skin_type=4,
                   features=("typical pigment network", "dotted vessels"))  # fmt: skip
    plain = sample("s2", "melanoma", "HAM10000")
    qs = [
        disease_question(typed, real_tax, random.Random(0)),
        lesion_question(typed),
        ddx_question(typed, real_tax, ddx, random.Random(0)),
        hierarchical_question(typed, real_tax, random.Random(0)),
        disease_question(plain, real_tax, random.Random(0)),
    ]
    for q in qs[:4]:
        assert (q.skin_type, q.features) == (4, ("typical pigment network", "dotted vessels"))
        row = q.to_row()
        assert row["skin_type"] == 4
        assert row["features"] == ["typical pigment network", "dotted vessels"]
    assert (qs[4].to_row()["skin_type"], qs[4].to_row()["features"]) == (None, None)
    empty = lesion_question(sample("s3", "melanoma", "derm7pt", features=()))
    ood = SimpleNamespace(id="o1", image="/x.jpg", source="ISIC2018", question="Q?",
                          options={"A": "x", "B": "y"}, answer="A", answer_text="x")  # fmt: skip
    typed_ood = SimpleNamespace(**vars(ood), skin_type=5, features=["scale"])
    assert from_ood(ood).to_row()["skin_type"] is None and from_ood(ood).features is None
    assert from_ood(typed_ood).skin_type == 5 and from_ood(typed_ood).features == ("scale",)

    rows = [q.to_row() for q in [*qs, empty, from_ood(ood)]]
    for feats in (row_features(), None):  # Arrow takes None in both columns, declared or not
        ds = datasets.Dataset.from_list(rows, features=feats)
        assert ds["skin_type"] == [4, 4, 4, 4, None, None, None]
        assert ds["features"][0] == ["typical pigment network", "dotted vessels"]
        assert ds["features"][4:] == [None, [], None]
    ds = datasets.Dataset.from_list([from_ood(ood).to_row()], features=row_features())
    assert ds.features["skin_type"].dtype == "int64" and ds[0]["features"] is None


# --- the demo generator's sidecar -------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory, real_tax):
    root = tmp_path_factory.mktemp("ann") / "demo"
    write_demo(root, real_tax, load_rules(real_tax), seed=4, scale=0.05, image_size=32)
    return root


def test_demo_annotations_cover_every_image(demo):
    with open(demo / ANNOTATIONS, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    on_disk = {
        p.relative_to(demo).as_posix()
        for p in demo.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }
    assert list(rows[0]) == ["image", "fitzpatrick"]
    assert len(rows) == len(on_disk) and {r["image"] for r in rows} == on_disk
    assert {r["image"].split("/")[0] for r in rows} == {
        "HAM10000", "PAD-UFES-20", "BCN20000", "derm12345", "derm7pt", "dermnet", "OmniMedVQA",
        "textbook",
    }  # fmt: skip
    assert {int(r["fitzpatrick"]) for r in rows} <= set(range(1, 7))
    assert len(load_annotations(demo / ANNOTATIONS)) == len(on_disk)


def test_demo_pad_fitspatrick_agrees_with_the_sidecar(demo, real_tax):
    ann = root_annotations(demo)
    pad = demo / "PAD-UFES-20"
    with open(pad / "metadata.csv", newline="", encoding="utf-8") as fh:
        meta = {r["img_id"]: r["fitspatrick"] for r in csv.DictReader(fh)}
    paths = {p.name: str(p.absolute()) for p in (pad / "images").rglob("*.png")}
    assert set(meta) == set(paths)
    typed = {img: v for img, v in meta.items() if v}
    assert typed  # the sparse questionnaire rows leave some empty, as in the real data
    assert all(int(float(v)) == ann[paths[img]] for img, v in typed.items())

    loaded = load_all(demo, real_tax, seed=4, check_images=False)
    for s in loaded["PAD-UFES-20"].samples:
        assert s.skin_type == (ann[s.image] if meta[Path(s.image).name] else None)
    ham = fill_skin_types(loaded["HAM10000"].samples, ann)
    assert all(s.skin_type in range(1, 7) for s in ham)  # the sidecar types every image
    d7 = loaded["derm7pt"]
    assert d7.samples and not d7.unannotated
    assert all(s.features is not None and set(s.features) <= ANNOTATED_VOCABULARY
               for s in d7.samples)  # fmt: skip


def test_cached_demo_root_without_sidecar_is_regenerated(demo, real_tax, tmp_path):
    import json
    import shutil

    from skinr1.embedded.demo_data import MARKER

    root = tmp_path / "demo"
    shutil.copytree(demo, root)
    (root / ANNOTATIONS).unlink()  # as a root cached before the sidecar existed
    write_demo(root, real_tax, load_rules(real_tax), seed=4, scale=0.05, image_size=32)
    assert (root / ANNOTATIONS).read_bytes() == (demo / ANNOTATIONS).read_bytes()
    marker = json.loads((root / MARKER).read_text())
    marker["params"]["version"] = 2  # a complete root of the previous demo version
    (root / MARKER).write_text(json.dumps(marker))
    stamp = (root / ANNOTATIONS).stat().st_mtime_ns
    write_demo(root, real_tax, load_rules(real_tax), seed=4, scale=0.05, image_size=32)
    assert json.loads((root / MARKER).read_text())["params"]["version"] == 3
    assert (root / ANNOTATIONS).stat().st_mtime_ns != stamp  # rewritten, not reused
