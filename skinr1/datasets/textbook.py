"""Textbook exemplars (I_i, r_i, d_i) in our own simple on-disk format.

``<root>/textbook/cases.jsonl``: one JSON object per line with ``id``, ``image`` (relative to
``<root>/textbook/``), ``rationale`` and ``diagnosis`` (a taxonomy node name or synonym);
images in ``<root>/textbook/images/``. Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from skinr1.datasets.base import TextbookCase

FOLDER = "textbook"
CASES = "cases.jsonl"
FIELDS = ("id", "image", "rationale", "diagnosis")


class TextbookError(ValueError):
    """A bad line in cases.jsonl; the message names the file, the line and the fix."""


def load_cases(root: Path, taxonomy) -> list[TextbookCase]:
    """Every case, with the image path made absolute and the diagnosis resolved to its node."""
    path = Path(root) / FOLDER / CASES
    if not path.is_file():
        raise TextbookError(
            f"{path}: not found; expected one JSON object per line with keys {list(FIELDS)}"
        )
    cases: list[TextbookCase] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{lineno}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TextbookError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(entry, dict):
            raise TextbookError(f"{where}: expected a JSON object with keys {list(FIELDS)}")
        absent = [k for k in FIELDS if not str(entry.get(k) or "").strip()]
        if absent:
            raise TextbookError(f"{where}: missing or empty {absent}")
        node = taxonomy.resolve(str(entry["diagnosis"]))
        if node is None:
            raise TextbookError(
                f"{where}: diagnosis {entry['diagnosis']!r} is not a taxonomy node or synonym "
                "(add it to skinr1/knowledge/taxonomy.yaml or fix the name)"
            )
        if entry["id"] in seen:
            raise TextbookError(f"{where}: duplicate id {entry['id']!r}")
        seen.add(entry["id"])
        image = path.parent / str(entry["image"])
        if not image.is_file():
            raise TextbookError(f"{where}: image {entry['image']!r} not found at {image}")
        cases.append(TextbookCase(str(entry["id"]), str(image), str(entry["rationale"]), node))
    return cases
