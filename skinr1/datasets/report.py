"""``python -m skinr1 datasets ROOT [--json]``: what the loaders find under a data root.

Per dataset: usable samples per split, usable samples per raw label, labels that could not be
mapped, and missing, unreadable, unlabelled and otherwise invalid records; how many usable
samples carry a skin type and annotated features, and the values that gave none
(``unannotated``: such records are still used, so they are not exclusions). Every labelled
record is in exactly one of samples / unmapped / missing / unreadable / invalid, so those add
up. How each label found its node (``explicit`` label map, taxonomy ``synonym``, class
``folder``). An absent folder is reported as absent (``null`` in JSON); a folder that is present
but unrecognisable as ``{"error": ...}`` with the file that was expected (exit status 1).

After the datasets, ``"duplicates"``: images that are one image (same ISIC id in the file name,
or the same bytes) across or within datasets, where their copies sit, how many test and
OmniMedVQA images are also in a training split, and ISIC ids whose copies disagree on the label
(``skinr1.datasets.duplicates``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from skinr1.datasets import LOADERS, RL_DATASETS, dataset_dir
from skinr1.datasets import duplicates as dup
from skinr1.datasets.base import SPLITS, DatasetLayoutError, LoadResult
from skinr1.datasets.splits import groups_across_splits

SHOW = 10  # names listed per category in the table; --json lists them all


def label_status(taxonomy, dataset: str, raw: str) -> str:
    """Why a label is unmapped: 'out_of_scope' (on purpose), 'malignancy_only' or 'unknown'."""
    if hasattr(taxonomy, "label_status"):
        try:
            return taxonomy.label_status(dataset, raw)
        except KeyError:  # no map for the dataset at all
            return "unknown"
    return "out_of_scope" if raw in taxonomy.out_of_scope.get(dataset, {}) else "unknown"


METHODS = ("explicit", "synonym", "folder")


def resolution(result: LoadResult) -> dict[str, dict[str, int]]:
    """Per method: how many raw labels resolved that way and how many usable samples they give."""
    raw = Counter(s.raw_label for s in result.samples)
    out = {m: {"labels": 0, "samples": 0} for m in METHODS}
    for label, how in result.resolved.items():
        out[how]["labels"] += 1
        out[how]["samples"] += raw.get(label, 0)
    return out


def summarise(result: LoadResult, taxonomy=None) -> dict:
    """The JSON entry of one dataset (the ``--json`` contract plus names and notes)."""
    raw = Counter(s.raw_label for s in result.samples)
    unmapped = dict(sorted(result.unmapped.items(), key=lambda kv: (-kv[1], kv[0])))
    status = (
        {k: label_status(taxonomy, result.dataset, k) for k in unmapped}
        if taxonomy is not None
        else {}
    )
    status.update({k: "ambiguous" for k in unmapped if k in result.ambiguous})
    nodes = {s.raw_label: s.node for s in result.samples}
    return {
        "samples": result.counts(),
        "raw_labels": dict(sorted(raw.items(), key=lambda kv: (-kv[1], kv[0]))),
        "unmapped": unmapped,
        "unmapped_status": status,
        "resolution": resolution(result),
        "resolved": {
            k: {"method": how, "node": nodes.get(k)} for k, how in sorted(result.resolved.items())
        },
        "ambiguous": {k: list(v) for k, v in sorted(result.ambiguous.items())},
        "missing_images": len(result.missing_images),
        "unreadable_images": len(result.unreadable_images),
        "empty_labels": len(result.empty_labels),
        "invalid": len(result.invalid),
        "groups_across_splits": len(groups_across_splits(result.samples)),
        "annotated": {
            "skin_type": sum(s.skin_type is not None for s in result.samples),
            "features": sum(s.features is not None for s in result.samples),
        },
        "unannotated": dict(sorted(result.unannotated.items(), key=lambda kv: (-kv[1], kv[0]))),
        "notes": list(result.notes),
        "names": {
            "missing_images": list(result.missing_images),
            "unreadable_images": list(result.unreadable_images),
            "empty_labels": list(result.empty_labels),
            "invalid": list(result.invalid),
        },
    }


def build_report(
    root: Path, taxonomy, *, seed: int, check_images: bool = True, duplicates: bool = True
) -> dict:
    """{dataset: summary | None (folder absent) | {"error": message}} for every loader, then
    ``"duplicates"``: ``DuplicateReport.to_json()`` over what loaded (None when skipped)."""
    report: dict[str, dict | None] = {}
    results: dict[str, LoadResult] = {}
    questions: list = []
    for name, load in LOADERS.items():
        folder = dataset_dir(root, name)
        if folder is None:
            report[name] = None
            continue
        try:
            results[name] = load(folder, taxonomy, seed=seed, check_images=check_images)
            report[name] = summarise(results[name], taxonomy)
            if name == "OmniMedVQA" and duplicates:
                from skinr1.datasets.omnimedvqa import parse_questions

                questions = parse_questions(folder, taxonomy)
        except DatasetLayoutError as exc:
            report[name] = {"error": str(exc)}
    report["duplicates"] = None
    if duplicates:
        rl = {n: r for n, r in results.items() if n in RL_DATASETS}
        found = dup.find(dup.copies_of(rl, questions, taxonomy), taxonomy)
        report["duplicates"] = found.to_json()
    return report


def datasets_of(report: dict) -> dict:
    """The per-dataset entries of a report (everything but ``"duplicates"``)."""
    return {k: v for k, v in report.items() if k in LOADERS}


def _listing(names: list[str]) -> str:
    more = f", ... and {len(names) - SHOW} more (see --json)" if len(names) > SHOW else ""
    return ", ".join(names[:SHOW]) + more


def format_table(report: dict, root: Path, *, seed: int, check_images: bool) -> str:
    check = "image headers checked" if check_images else "image headers NOT checked"
    cols = ("train", "val", "test", "unmapped", "missing", "unreadable", "empty", "invalid")
    lines = [
        f"data root {root} (seed {seed}, {check})",
        "",
        f"{'dataset':<13}" + "".join(f"{c:>11}" for c in cols),
    ]
    datasets = datasets_of(report)
    for name, entry in datasets.items():
        if entry is None:
            lines.append(f"{name:<13}  absent (no folder {root / name})")
        elif "error" in entry:
            lines.append(f"{name:<13}  unrecognisable (see below)")
        else:
            values = [entry["samples"][s] for s in SPLITS] + [
                sum(entry["unmapped"].values()),
                entry["missing_images"],
                entry["unreadable_images"],
                entry["empty_labels"],
                entry["invalid"],
            ]
            lines.append(f"{name:<13}" + "".join(f"{v:>11}" for v in values))
    for name, entry in datasets.items():
        if entry is None:
            continue
        lines += ["", f"{name}"]
        if "error" in entry:
            lines.append(f"  error: {entry['error']}")
            continue
        labels = ", ".join(f"{k} {v}" for k, v in entry["raw_labels"].items()) or "none"
        lines.append(f"  usable samples per raw label: {labels}")
        how = entry["resolution"]
        if any(v["labels"] for v in how.values()):
            parts = [
                f"{m} {v['labels']} labels ({v['samples']} samples)"
                for m, v in how.items()
                if v["labels"]
            ]
            lines.append(f"  labels resolved by: {', '.join(parts)}")
        synonyms = [
            f"{k} -> {v['node']} {entry['raw_labels'].get(k, 0)}"
            for k, v in entry["resolved"].items()
            if v["method"] == "synonym"
        ]
        if synonyms:
            lines.append(f"  resolved through the taxonomy's names: {_listing(synonyms)}")
        if entry["unmapped"]:
            status = entry["unmapped_status"]
            groups = {"unknown": [], "out_of_scope": [], "malignancy_only": [], "ambiguous": []}
            for k, v in entry["unmapped"].items():
                if status.get(k) == "ambiguous":
                    v = f"{v} ({' or '.join(entry['ambiguous'][k])})"
                groups.setdefault(status.get(k, "unknown"), []).append(f"{k} {v}")
            for kind, title in (
                ("unknown", "labels not in the label map"),
                ("ambiguous", "names matching two nodes equally (unresolved)"),
                ("out_of_scope", "labels out of scope on purpose"),
                ("malignancy_only", "answers that name only a malignancy"),
            ):
                if groups[kind]:
                    lines.append(f"  {title}: {', '.join(groups[kind])}")
        for key, title in (
            ("missing_images", "missing images"),
            ("unreadable_images", "unreadable images"),
            ("empty_labels", "records without a label"),
            ("invalid", "invalid records"),
        ):
            if entry["names"][key]:
                names = entry["names"][key]
                lines.append(f"  {title} ({len(names)}): {_listing(names)}")
        have = entry["annotated"]
        if have["skin_type"] or have["features"]:
            n = sum(entry["samples"].values())
            lines.append(
                f"  annotated samples: skin type {have['skin_type']}/{n}, "
                f"features {have['features']}/{n}"
            )
        if entry["unannotated"]:
            values = [f"{k} {v}" for k, v in entry["unannotated"].items()]
            lines.append(f"  values that gave no annotation (records kept): {_listing(values)}")
        if entry["groups_across_splits"]:
            lines.append(
                f"  groups in more than one split: {entry['groups_across_splits']} "
                "(official splits share them)"
            )
        for note in entry["notes"]:
            lines.append(f"  note: {note}")
    if report.get("duplicates") is not None:
        lines += ["", *format_duplicates(report["duplicates"])]
    return "\n".join(lines)


def format_duplicates(d: dict) -> list[str]:
    lines = [
        f"duplicates: images found more than once {d['groups']} ({d['images']} copies; "
        f"{d['across_datasets']} across datasets, {d['within_a_dataset']} within one; "
        f"{d['by_isic_id']} by ISIC id, {d['by_content_only']} by content only)"
    ]
    for places, n in d["places"].items():
        lines.append(f"  {places}: {n}")
    if d["in_training_split"]:
        leaks = ", ".join(f"{k} {v}" for k, v in d["in_training_split"].items())
        lines.append(f"  images also in a training split (left out of test sets): {leaks}")
    if d["conflicting_labels"]:
        names = [f"{k} ({'; '.join(v)})" for k, v in d["conflicting_labels"].items()]
        lines.append(f"  ISIC ids with different labels ({len(names)}): {_listing(names)}")
    if d["unreadable"]:
        lines.append(f"  files that could not be hashed ({len(d['unreadable'])}): "
                     f"{_listing(d['unreadable'])}")  # fmt: skip
    if d["names"]:
        lines.append(f"  copies: {_listing([' = '.join(g) for g in d['names']])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m skinr1 datasets",
        description="Report what the dataset loaders find under a data root.",
    )
    parser.add_argument("root", type=Path, help="folder holding HAM10000/, PAD-UFES-20/, ...")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    parser.add_argument(
        "--seed", type=int, help="seed of the random splits (default: --params' seed, else 1234)"
    )
    parser.add_argument("--params", type=Path, help="params.yaml to read the seed from")
    parser.add_argument(
        "--no-duplicates",
        action="store_true",
        help="skip the duplicate check (hashing every image)",
    )
    parser.add_argument(
        "--no-image-check",
        action="store_true",
        help="skip opening every image (existence is still checked)",
    )
    args = parser.parse_args(argv)
    if args.seed is None:
        if args.params is not None:
            from skinr1.config import load_params

            args.seed = load_params(args.params).seed
        else:
            args.seed = 1234
    if not args.root.is_dir():
        print(f"error: data root {args.root} is not a folder", file=sys.stderr)
        return 2
    from skinr1.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    check = not args.no_image_check
    report = build_report(
        args.root, taxonomy, seed=args.seed, check_images=check, duplicates=not args.no_duplicates
    )
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        print(format_table(report, args.root, seed=args.seed, check_images=check))
    return 1 if any(e is not None and "error" in e for e in datasets_of(report).values()) else 0
