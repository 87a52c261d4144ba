"""OmniMedVQA's dermoscopy subset, the out-of-distribution test set (paper, Appendix A).

Layout ``QA_information/{Open-access,Restricted-access}/<Dataset>.json`` + ``Images/...``, at the
folder's top or one level deeper (``OmniMedVQA/OmniMedVQA/`` as the archive unpacks). Each JSON
file is a list of items; only ``question_type == "Disease Diagnosis"`` counts, and the
Fitzpatrick 17k and PAD-UFES-20 files are left out as in the paper (they overlap SkinCon and our
RL data). ``option_C``/``option_D`` may be missing or null; answers are compared after
normalising case, spacing and a trailing full stop.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from skinr1.datasets.base import (
    DatasetLayoutError,
    LoadResult,
    RecordCollector,
    check_image_files,
    find_child,
    find_nested,
    outside_root,
)

NAME = "OmniMedVQA"
INCLUDED = ("ISBI2016", "ISIC2018", "ISIC2019", "ISIC2020", "Monkeypox Skin Image 2022")
EXCLUDED = ("Fitzpatrick 17k", "PAD-UFES-20")
QUESTION_TYPE = "Disease Diagnosis"


@dataclass(frozen=True)
class OODQuestion:
    id: str
    image: str
    source: str  # the original dataset, e.g. "ISIC2019"
    question: str
    options: dict[str, str] = field(hash=False)  # letter -> text, only options that exist
    answer: str  # letter
    answer_text: str


def normalise_answer(text: object) -> str:
    """ "melanoma" for "Melanoma.", " melanoma ", "MELANOMA"."""
    return " ".join(str(text).split()).rstrip(".").strip().lower()


def _options(item: dict) -> dict[str, str]:
    out = {}
    for key in sorted(k for k in item if k.startswith("option_")):
        value = item[key]
        if value is not None and str(value).strip():
            out[key.removeprefix("option_")] = str(value).strip()
    return out


def _parse(root: Path, taxonomy) -> tuple[RecordCollector, list[OODQuestion]]:
    base = find_nested(root, ["QA_information"])
    if base is None:
        raise DatasetLayoutError(
            f"{root}: no QA_information/ folder; expected OmniMedVQA's QA_information/"
            "{Open-access,Restricted-access}/<Dataset>.json and Images/ (from OmniMedVQA.zip)"
        )
    qa = find_child(base, ["QA_information"])
    files = sorted(qa.rglob("*.json"))
    included = {s.lower(): s for s in INCLUDED}
    excluded = {s.lower(): s for s in EXCLUDED}
    col = RecordCollector(NAME, taxonomy)
    questions: list[OODQuestion] = []
    other_types: Counter = Counter()
    ignored_files = 0
    seen: set[str] = set()
    if not any(f.stem.lower() in included for f in files):
        col.result.notes.append(f"none of {[s + '.json' for s in INCLUDED]} found under {qa}")
    for path in files:
        stem = path.stem.lower()
        if stem not in included:
            if stem in excluded:
                col.result.notes.append(
                    f"{path.name}: {len(_read_items(path))} items left out as in the paper"
                )
            else:
                ignored_files += 1
            continue
        for i, item in enumerate(_read_items(path)):
            if item.get("question_type") != QUESTION_TYPE:
                other_types[str(item.get("question_type"))] += 1
                continue
            source = str(item.get("dataset") or included[stem])
            qid = f"{source}/{item.get('question_id', i)}"
            if qid in seen:
                col.result.invalid.append(f"{qid}: duplicate question id (kept the first)")
                continue
            seen.add(qid)
            gt = item.get("gt_answer")
            options = _options(item)
            answer = normalise_answer(gt) if gt is not None else ""
            letter = next((k for k, v in options.items() if normalise_answer(v) == answer), None)
            if answer and letter is None:
                col.result.invalid.append(f"{qid}: answer {gt!r} is not among its options")
                continue
            rel = str(item.get("image_path", ""))
            if rel and outside_root(rel):
                col.result.invalid.append(
                    f"{qid}: image_path {rel!r} leads outside {root.name}/ (not opened)"
                )
                continue
            image = base / rel if rel else None
            col.add(
                qid, answer, image, split="test", group=rel or qid, expected=f"{root.name}/{rel}"
            )
            if answer:
                questions.append(
                    OODQuestion(
                        qid,
                        str(image),
                        source,
                        str(item.get("question", "")),
                        options,
                        letter,
                        options[letter],
                    )
                )
    if other_types:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(other_types.items()))
        col.result.notes.append(f"question types other than {QUESTION_TYPE} left out: {kinds}")
    if ignored_files:
        col.result.notes.append(f"{ignored_files} QA files outside the dermoscopy subset ignored")
    return col, questions


def _read_items(path: Path) -> list[dict]:
    try:
        items = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetLayoutError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise DatasetLayoutError(f"{path}: expected a JSON list of question objects")
    return items


def load(root: Path, taxonomy, *, seed: int, check_images: bool = True) -> LoadResult:
    """Samples of the Disease Diagnosis items (all ``split == "test"``) for the report."""
    col, _ = _parse(root, taxonomy)
    return col.finish(seed=seed, check_images=check_images)


def parse_questions(root: Path, taxonomy) -> list[OODQuestion]:
    """Every Disease Diagnosis question of the kept files, images not checked (for the
    duplicate check, which hashes the images itself)."""
    return _parse(root, taxonomy)[1]


def load_questions(root: Path, taxonomy) -> tuple[list[OODQuestion], LoadResult]:
    """Every Disease Diagnosis question with a usable image, mapped label or not.

    The benchmark scores the letter against the original options, so a question needs no
    taxonomy node; the LoadResult's samples are the mapped subset.
    """
    col, questions = _parse(root, taxonomy)
    result = col.finish(seed=0)
    good = {s.image for s in result.samples}
    rest = [q for q in questions if q.image not in good]
    problems = check_image_files([Path(q.image) for q in rest])
    bad = {q.id for q, p in zip(rest, problems, strict=True) if p is not None}
    if bad:
        result.notes.append(f"{len(bad)} questions left out: image missing or unreadable")
    return [q for q in questions if q.id not in bad], result
