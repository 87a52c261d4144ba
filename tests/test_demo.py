"""The demo generator: real layouts, read back by the real loaders, deterministic, idempotent."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from skinr1.datasets import LOADERS, load_all
from skinr1.datasets.dermnet import FOLDERS
from skinr1.datasets.textbook import load_cases
from skinr1.embedded.demo_data import MARKER, allocate, seven_point, write_demo
from skinr1.rules import Features, load_rules
from skinr1.taxonomy import load_taxonomy

SEED, SCALE, SIZE = 5, 0.1, 64


@pytest.fixture(scope="module")
def knowledge():
    tax = load_taxonomy()
    return tax, load_rules(tax)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, knowledge):
    root = tmp_path_factory.mktemp("demo") / "data"
    summary = write_demo(root, *knowledge, seed=SEED, scale=SCALE, image_size=SIZE)
    return root, summary


def header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh))


def digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def test_allocate_floor_and_proportions():
    # 14 left after the floors: 12.6, 1.26, 0.14 -> 12, 1, 0 and the spare one to the largest
    # remainder (a).
    assert allocate({"a": 90, "b": 9, "c": 1}, 20, 2) == {"a": 15, "b": 3, "c": 2}
    assert sum(allocate({"a": 1, "b": 1, "c": 1}, 10, 0).values()) == 10
    assert allocate({"a": 1, "b": 1}, 1, 3) == {"a": 3, "b": 3}  # the floor wins over total


def test_real_layouts(demo):
    root, _ = demo
    ham = root / "HAM10000"
    assert header(ham / "HAM10000_metadata") == [
        "lesion_id",
        "image_id",
        "dx",
        "dx_type",
        "age",
        "sex",
        "localization",
        "dataset",
    ]
    assert header(ham / "ISIC2018_Task3_Test_GroundTruth.csv")[:3] == [
        "lesion_id",
        "image_id",
        "dx",
    ]
    assert {p.parent.name for p in ham.rglob("*.jpg")} == {
        "HAM10000_images_part_1",
        "HAM10000_images_part_2",
        "ISIC2018_Task3_Test_Images",
    }
    pad = root / "PAD-UFES-20"
    assert (
        len(header(pad / "metadata.csv")) == 26
        and header(pad / "metadata.csv")[13] == "fitspatrick"
    )
    pngs = list(pad.rglob("*.png"))
    assert pngs and all(
        p.parent.name == p.parent.parent.name and p.parent.name.startswith("imgs_part_")
        for p in pngs
    )
    assert header(root / "BCN20000" / "bcn_20k_train.csv")[3] == "diagnosis"
    assert "diagnosis" not in header(root / "BCN20000" / "bcn_20k_test.csv")
    d12 = root / "derm12345"
    assert header(d12 / "derm12345_metadata_train.csv")[-1] == "label"
    assert {p.name for p in (d12 / "derm12345_train_part_1").iterdir()} <= {"alm", "anm"}
    meta = root / "derm7pt" / "release_v0" / "meta"
    assert len(header(meta / "meta.csv")) == 19
    assert all(header(meta / f"{s}_indexes.csv") == ["indexes"] for s in ("train", "valid", "test"))
    for part in ("train", "test"):
        assert sorted(p.name for p in (root / "dermnet" / part).iterdir()) == sorted(FOLDERS)
    qa = root / "OmniMedVQA" / "OmniMedVQA" / "QA_information" / "Open-access"
    assert {p.stem for p in qa.glob("*.json")} == {
        "ISBI2016",
        "ISIC2018",
        "ISIC2019",
        "ISIC2020",
        "Monkeypox Skin Image 2022",
        "Fitzpatrick 17k",
        "PAD-UFES-20",
    }
    items = json.loads((qa / "ISIC2019.json").read_text())
    assert {
        "question_id",
        "question_type",
        "question",
        "gt_answer",
        "image_path",
        "option_A",
        "option_B",
        "modality_type",
        "dataset",
    } <= set(items[0])
    assert (root / "textbook" / "cases.jsonl").is_file()


def test_image_formats(demo):
    root, _ = demo
    png = next((root / "PAD-UFES-20").rglob("*.png"))
    jpg = next((root / "BCN20000").rglob("*.jpg"))
    with Image.open(png) as a, Image.open(jpg) as b:
        assert (a.format, a.size, b.format, b.size) == ("PNG", (SIZE, SIZE), "JPEG", (SIZE, SIZE))


def test_loaders_read_every_dataset(demo, knowledge):
    root, summary = demo
    tax, _ = knowledge
    results = load_all(root, tax, seed=SEED)
    assert set(results) == set(LOADERS) and all(r is not None for r in results.values())
    for name, res in results.items():
        assert res.missing_images == [] and res.unreadable_images == [], name
        assert res.invalid == [] and res.empty_labels == [], name
        assert len(res.samples) + sum(res.unmapped.values()) > 0, name
        assert summary["samples"][name] == {**res.counts(), "unmapped": sum(res.unmapped.values())}
    ham = results["HAM10000"]
    assert {s.raw_label for s in ham.samples} == {"nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"}
    raw = [s.raw_label for s in ham.samples]
    assert max(set(raw), key=raw.count) == "nv"  # the real class balance, scaled down
    assert all(c > 0 for c in ham.counts().values())
    # DermNet's out-of-scope names and pattern-less files are reported, never silently dropped.
    assert "Acne and Rosacea Photos" in results["dermnet"].unmapped


def test_textbook_cases_are_new_images(demo, knowledge):
    root, _ = demo
    tax, rules = knowledge
    cases = load_cases(root, tax)
    diagnoses = {c.diagnosis for c in cases}
    classes = set(tax.dataset_maps["HAM10000"].values())
    assert classes <= diagnoses
    # the textbook covers every label the RL datasets ask about, subtypes included
    from skinr1.embedded.demo_data import TEXTBOOK_DATASETS

    labels = {n for d in TEXTBOOK_DATASETS for n in tax.dataset_maps.get(d, {}).values()}
    assert labels <= diagnoses and len(labels) > len(classes) + 40
    # At scale 0.1: round(32 * 0.1) = 3 cases per HAM10000 class, the floor of 2 per neighbour.
    per = Counter(c.diagnosis for c in cases)
    assert {d: per[d] for d in classes} == dict.fromkeys(classes, 3)
    assert set(per.values()) == {2, 3} and len(per) > len(classes)
    for c in cases:
        assert rules.rule_for(c.diagnosis, tax).text in c.rationale
    textbook = {hashlib.sha256(Path(c.image).read_bytes()).digest() for c in cases}
    others = {
        hashlib.sha256(p.read_bytes()).digest()
        for p in root.rglob("*")
        if p.suffix in {".jpg", ".JPG", ".png"} and "textbook" not in p.parts
    }
    assert len(textbook) == len(cases) and not textbook & others


def test_deterministic_per_seed(demo, knowledge, tmp_path):
    root, summary = demo
    again = write_demo(tmp_path / "again", *knowledge, seed=SEED, scale=SCALE, image_size=SIZE)
    assert digest_tree(tmp_path / "again") == digest_tree(root)
    assert {k: v for k, v in again.items() if k != "root"} == {
        k: v for k, v in summary.items() if k != "root"
    }
    write_demo(tmp_path / "other", *knowledge, seed=SEED + 1, scale=SCALE, image_size=SIZE)
    other = digest_tree(tmp_path / "other")
    assert other["HAM10000/HAM10000_metadata"] != digest_tree(root)["HAM10000/HAM10000_metadata"]


def test_idempotent_and_safe(knowledge, tmp_path):
    root = tmp_path / "demo"
    first = write_demo(root, *knowledge, seed=1, scale=0.05, image_size=32)
    meta = root / "HAM10000" / "HAM10000_metadata"
    stamp = meta.stat().st_mtime_ns
    assert write_demo(root, *knowledge, seed=1, scale=0.05, image_size=32) == first
    assert meta.stat().st_mtime_ns == stamp  # reused, not rewritten
    write_demo(root, *knowledge, seed=2, scale=0.05, image_size=32)
    assert json.loads((root / MARKER).read_text())["params"]["seed"] == 2
    assert not list(tmp_path.glob(".demo.*"))  # no temporary or old folders left behind
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a demo root"):
        write_demo(precious, *knowledge, seed=1, scale=0.05, image_size=32)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_seven_point_fields_follow_the_drawn_features():
    f = Features(
        symmetry="asymmetric",
        colours=("dark brown", "black"),
        structures=("atypical pigment network", "blue-white veil", "irregular dots and globules"),
    )
    sp = seven_point(f)
    assert (
        sp["pigment_network"],
        sp["blue_whitish_veil"],
        sp["dots_and_globules"],
        sp["pigmentation"],
    ) == ("atypical", "present", "irregular", "diffuse irregular")
    assert sp["seven_point_score"] == "6"  # 2 + 2 + 1 (dots) + 1 (pigmentation)


def test_interrupted_run_leaves_nothing(knowledge, tmp_path):
    from skinr1.embedded.lesions import render

    calls = []

    def failing_render(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("disk full")
        return render(*args, **kwargs)

    with pytest.raises(RuntimeError, match="disk full"):
        write_demo(
            tmp_path / "demo", *knowledge, seed=1, scale=0.05, image_size=32, render=failing_render
        )
    assert list(tmp_path.iterdir()) == []  # neither the root nor a temporary folder


def test_cli_reads_params_and_flags_override(tmp_path, capsys):
    import yaml

    from skinr1.embedded.demo_data import main

    raw = yaml.safe_load((Path(__file__).resolve().parent.parent / "params.yaml").read_text())
    raw["seed"] = 7
    raw["demo"] = {
        "root": str(tmp_path / "out"),
        "scale": 0.05,
        "image_size": 32,
        "test_scale": 2.0,
        "textbook": {"per_class": 40, "per_neighbour": 40, "per_label": 40},
    }
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    assert main(["--params", str(params), "--seed", "8"]) == 0
    done = json.loads((tmp_path / "out" / MARKER).read_text())["params"]
    assert (done["seed"], done["scale"], done["image_size"], done["test_scale"]) == (
        8,
        0.05,
        32,
        2.0,
    )
    assert done["textbook"] == {"per_class": 40, "per_neighbour": 40, "per_label": 40}
    # 40 x 0.05 = 2 cases of each of the 91 textbook diagnoses (the floor is 2 as well)
    cases = (tmp_path / "out" / "textbook" / "cases.jsonl").read_text().splitlines()
    assert len(cases) == 2 * 91
    assert "demo data in" in capsys.readouterr().out


def test_textbook_counts_set_the_cases_per_diagnosis(knowledge, tmp_path):
    tax = knowledge[0]
    counts = {"per_class": 60, "per_neighbour": 20, "per_label": 40}
    write_demo(tmp_path / "t", *knowledge, seed=SEED, scale=0.1, image_size=32, textbook=counts)
    cases = [json.loads(x) for x in (tmp_path / "t/textbook/cases.jsonl").read_text().splitlines()]
    per = Counter(c["diagnosis"] for c in cases)
    assert per["melanoma"] == 6 and per["blue nevus"] == 4
    assert {per[d] for d in set(tax.dataset_maps["HAM10000"].values())} == {6}
    with pytest.raises(ValueError, match=r"demo.textbook=.*expected counts >= 1"):
        write_demo(tmp_path / "bad", *knowledge, seed=SEED, scale=0.1, image_size=32,
                   textbook={"per_class": 0, "per_neighbour": 1, "per_label": 1})  # fmt: skip


def test_test_scale_enlarges_the_held_out_parts_alone(demo, knowledge, tmp_path):
    _, summary = demo
    big = write_demo(tmp_path / "big", *knowledge, seed=SEED, scale=SCALE, image_size=SIZE,
                     test_scale=3.0)["samples"]  # fmt: skip
    base = summary["samples"]
    # HAM10000's training part is drawn before its ISIC 2018 test set: identical
    assert big["HAM10000"]["train"] == base["HAM10000"]["train"]
    for name in ("HAM10000", "derm12345", "derm7pt", "OmniMedVQA"):
        assert big[name]["test"] >= 2 * base[name]["test"], name
    # PAD-UFES-20 and BCN20000 ship no test split: the loaders' 6:2:2 cut is unchanged
    assert big["PAD-UFES-20"] == base["PAD-UFES-20"] and big["BCN20000"] == base["BCN20000"]
    with pytest.raises(ValueError, match="demo.test_scale=0.5: must be >= 1"):
        write_demo(tmp_path / "bad", *knowledge, seed=SEED, scale=SCALE, image_size=SIZE,
                   test_scale=0.5)  # fmt: skip
