"""Per-image skin types kept beside the images: ``annotations.csv`` at a data root.

Fairness by Fitzpatrick skin type needs a type for every test image, but of the datasets only
PAD-UFES-20's metadata records one (``fitspatrick``). The demo generator knows the tone it drew
every image with and writes it here, as a sidecar the real downloads do not have; a real root
may carry one too (e.g. an external skin-type annotation of a test set).

Format: header ``image,fitzpatrick`` (further columns are ignored); ``image`` is the path
relative to the folder that holds the file, with forward slashes; ``fitzpatrick`` is 1-6, or
empty for an image nobody typed (skipped, not an error).

Strict by design: the file is generated or curated, so a row that cannot be read — an empty or
escaping ``image``, a type that is not a whole number in 1-6, or one image given two different
types — means the file is wrong. ``load_annotations`` then raises AnnotationError naming the
file, how many rows are bad and the first few with their line numbers, rather than quietly
typing fewer images.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from skinr1.datasets.base import Sample, outside_root, parse_skin_type

ANNOTATIONS = "annotations.csv"  # the sidecar's name at a data root
HEADER = ("image", "fitzpatrick")
SHOW = 5  # bad rows quoted in the error


class AnnotationError(ValueError):
    """An annotations file that cannot be read; the message names the file."""


def write_annotations(path: Path, tones: Mapping[str, int]) -> None:
    """Write ``tones`` (relative image path -> type 1-6) as ``path``, sorted by image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows([rel, int(tones[rel])] for rel in sorted(tones))


def load_annotations(path: Path) -> dict[str, int]:
    """Absolute image path -> Fitzpatrick type 1-6 from an ``annotations.csv``.

    Paths are made absolute against the file's folder with ``os.path.abspath`` (as the loaders
    make ``Sample.image``), so they compare equal to the samples' paths under the same root.
    Raises AnnotationError for a bad header or any bad row (see the module docstring).
    """
    path = Path(path)
    folder = path.parent
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if any(c not in header for c in HEADER):
            raise AnnotationError(
                f"{path}: header {header} lacks {[c for c in HEADER if c not in header]}; "
                f"expected a header: {','.join(HEADER)}"
            )
        col = {c: header.index(c) for c in HEADER}
        out: dict[str, int] = {}
        bad: list[str] = []
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue  # blank line
            values = [v.strip() for v in values] + [""] * (len(header) - len(values))
            rel, text = values[col["image"]].replace("\\", "/"), values[col["fitzpatrick"]]
            if not rel or outside_root(rel):
                bad.append(f"line {line}: image {rel!r} is empty or leads outside {folder}")
                continue
            if not text:
                continue  # not annotated
            tone = parse_skin_type(text)
            if tone is None:
                bad.append(f"line {line}: fitzpatrick {text!r} is not a whole number in 1-6")
                continue
            key = os.path.abspath(folder / rel)
            if out.get(key, tone) != tone:
                bad.append(f"line {line}: {rel} has type {tone} and, earlier, {out[key]}")
                continue
            out[key] = tone
    if bad:
        more = f" (and {len(bad) - SHOW} more)" if len(bad) > SHOW else ""
        raise AnnotationError(f"{path}: {len(bad)} bad row(s): {'; '.join(bad[:SHOW])}{more}")
    return out


def root_annotations(root: Path) -> dict[str, int]:
    """``load_annotations`` of ``root/annotations.csv``; {} when the root has none."""
    path = Path(root) / ANNOTATIONS
    return load_annotations(path) if path.is_file() else {}


def fill_skin_types(samples: Iterable[Sample], annotations: Mapping[str, int]) -> list[Sample]:
    """The samples, those without a ``skin_type`` given the annotated one for their image.

    A type the loader read from the dataset's own metadata wins over the sidecar: it is the
    dataset's record, the sidecar a supplement.
    """
    out = []
    for s in samples:
        tone = annotations.get(os.path.abspath(s.image)) if s.skin_type is None else None
        out.append(dataclasses.replace(s, skin_type=tone) if tone is not None else s)
    return out
