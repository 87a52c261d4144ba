"""``python -m skinr1 datasets ROOT [--json]`` on a demo root with faults put in by hand."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from skinr1.datasets import LOADERS
from skinr1.datasets.report import main
from skinr1.embedded.demo_data import write_demo
from skinr1.rules import load_rules
from skinr1.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    tax = load_taxonomy()
    root = tmp_path_factory.mktemp("report") / "demo"
    write_demo(root, tax, load_rules(tax), seed=3, scale=0.1, image_size=32)
    return root


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def labelled_records(root: Path) -> dict[str, int]:
    """Rows with a label, counted straight from the metadata files (not by the loaders)."""
    ham = root / "HAM10000"
    qa = root / "OmniMedVQA" / "OmniMedVQA" / "QA_information" / "Open-access"
    kept = ("ISBI2016", "ISIC2018", "ISIC2019", "ISIC2020", "Monkeypox Skin Image 2022")
    return {
        "HAM10000": sum(
            1
            for f in ("HAM10000_metadata", "ISIC2018_Task3_Test_GroundTruth.csv")
            for r in rows(ham / f)
            if r["dx"]
        ),
        "PAD-UFES-20": sum(
            1 for r in rows(root / "PAD-UFES-20" / "metadata.csv") if r["diagnostic"]
        ),
        "BCN20000": sum(1 for r in rows(root / "BCN20000" / "bcn_20k_train.csv") if r["diagnosis"]),
        "derm7pt": 2 * len(rows(root / "derm7pt" / "release_v0" / "meta" / "meta.csv")),
        "OmniMedVQA": sum(
            1
            for k in kept
            for item in json.loads((qa / f"{k}.json").read_text())
            if item["question_type"] == "Disease Diagnosis"
        ),
    }


@pytest.fixture()
def faulty(pristine, tmp_path) -> dict:
    root = tmp_path / "demo"
    shutil.copytree(pristine, root)
    ham = root / "HAM10000"
    meta = rows(ham / "HAM10000_metadata")
    gone, broken = meta[0]["image_id"], meta[1]["image_id"]
    (next(ham.rglob(f"{gone}.jpg"))).unlink()
    bad = next(ham.rglob(f"{broken}.jpg"))
    bad.write_bytes(bad.read_bytes()[:2])  # a truncated download: the JPEG marker only
    with open(ham / "HAM10000_metadata", "a", encoding="utf-8") as fh:
        fh.write("HAM_0099999,ISIC_0099999,zzz,histo,50.0,male,back,rosendahl\n")
        fh.write("HAM_0099998,ISIC_0099998,,histo,50.0,male,back,rosendahl\n")
    shutil.rmtree(root / "derm12345")
    shutil.rmtree(root / "dermnet" / "train")
    shutil.rmtree(root / "dermnet" / "test")
    return {"root": root, "gone": gone, "broken": bad}


def test_json_contract_adds_up(faulty, capsys):
    root = faulty["root"]
    assert main([str(root), "--json"]) == 1  # one unrecognisable folder
    report = json.loads(capsys.readouterr().out)
    assert list(report) == [*LOADERS, "duplicates"]
    assert report["duplicates"]["groups"] == 0
    assert report["derm12345"] is None  # absent is not an error
    assert "train/<class folder>" in report["dermnet"]["error"]
    expected = labelled_records(root)
    for name, n in expected.items():
        e = report[name]
        assert set(e["samples"]) == {"train", "val", "test"}
        assert sum(e["raw_labels"].values()) == sum(e["samples"].values())
        assert e["invalid"] == 0
        found = (
            sum(e["samples"].values())
            + sum(e["unmapped"].values())
            + e["missing_images"]
            + e["unreadable_images"]
        )
        assert found == n, name
    ham = report["HAM10000"]
    assert (ham["missing_images"], ham["unreadable_images"], ham["empty_labels"]) == (1, 1, 1)
    assert ham["unmapped"] == {"zzz": 1} and ham["unmapped_status"] == {"zzz": "unknown"}
    assert ham["names"]["missing_images"][0].endswith(f"{faulty['gone']}.jpg")
    assert ham["names"]["unreadable_images"] == [str(faulty["broken"])]
    assert ham["names"]["empty_labels"] == ["ISIC_0099998"]
    assert ham["groups_across_splits"] == 0


def test_readable_table(faulty, capsys):
    root = faulty["root"]
    main([str(root)])
    out = capsys.readouterr().out
    assert f"derm12345      absent (no folder {root / 'derm12345'})" in out
    assert "dermnet        unrecognisable (see below)" in out
    assert "labels not in the label map: zzz 1" in out
    gone = faulty["gone"]
    assert f"missing images (1): HAM10000/HAM10000_images_part_{{1,2}}/{gone}.jpg" in out
    assert f"unreadable images (1): {faulty['broken']}" in out
    assert "records without a label (1): ISIC_0099998" in out
    assert "note: bcn_20k_test.csv:" in out


def test_clean_demo_root_and_bad_root(pristine, capsys, tmp_path):
    assert main([str(pristine), "--json", "--no-image-check"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(report[n] is not None and "error" not in report[n] for n in LOADERS)
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
