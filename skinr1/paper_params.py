"""Apply the paper's parameter set (configs/paper.yaml) to params.yaml, value by value.

params.yaml is the one record of a run and its comments document every knob, so the overlay is
written into the text rather than dumped through a YAML round trip (which would drop them):
only the value between ``key:`` and its comment changes, everything else stays byte for byte.

``python -m skinr1 paper-params [--params params.yaml] [--overlay configs/paper.yaml] [--out P]``
"""

from __future__ import annotations

import argparse
import copy
import difflib
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

OVERLAY_NAME = Path("configs") / "paper.yaml"

_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*):(?=\s|$)(.*)$")
_SECTION_KEY = re.compile(r"^  ([A-Za-z_][\w-]*):(?=\s|$)(.*)$")


@dataclass(frozen=True)
class Change:
    """One rewritten value: ``key`` is dotted (``sft.learning_rate``), old/new as YAML text."""

    key: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.key}: {self.old} -> {self.new}"


def deep_merge(base: Any, overlay: Any) -> Any:
    """``base`` with ``overlay`` laid over it: mappings merge key by key, anything else replaces.
    The result params.yaml must load to exactly this."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(overlay)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types (True == 1 and 0 == 0.0 in Python, not in params.yaml)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _split_comment(rest: str) -> tuple[str, str]:
    """Split the text after ``key:`` into (value, comment): a comment starts at a ``#`` that
    follows whitespace outside quotes, as in YAML."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i], rest[i:]
    return rest, ""


def _float_text(value: float) -> str:
    """A float as PyYAML reads it back (it needs a dot and a signed exponent: 1.0e-5, not 1e-5)."""
    text = repr(value)
    if math.isfinite(value) and "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        exp = int(exponent)
        text = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp)}"
    return text


def format_value(value: Any) -> str:
    """One line of YAML flow style for ``value``: ``[1, 2, 3]``, ``[]``, ``null``, ``3.0e-5``,
    strings unquoted where YAML reads them back as the same string."""
    if isinstance(value, float) and not isinstance(value, bool):
        text = _float_text(value)
    else:
        text = yaml.safe_dump(
            value, default_flow_style=True, width=math.inf, allow_unicode=True, sort_keys=False
        )
        text = text.removesuffix("\n").removesuffix("\n...").strip()
    if "\n" in text or not _same(yaml.safe_load(text), value):
        raise ValueError(f"cannot write {value!r} as a one-line YAML value")
    return text


def _value_text(lines: list[str], i: int, rest: str) -> tuple[str, int]:
    """The value of the key on ``lines[i]`` (``rest`` = text after ``key:``), comments stripped,
    and the index after its last line: a flow collection may continue on deeper lines."""
    parts = [_split_comment(rest)[0]]
    j = i + 1
    indent = len(lines[i]) - len(lines[i].lstrip(" "))
    while j < len(lines):
        line = lines[j]
        stripped = line.strip()
        deeper = len(line) - len(line.lstrip(" ")) > indent
        if not stripped or stripped.startswith("#") or not deeper:
            break
        parts.append(_split_comment(line)[0])
        j += 1
    return "\n".join(parts), j


def _rewrite(lines: list[str], i: int, match: re.Match, value: Any, key: str) -> Change | None:
    """Put ``value`` on ``lines[i]`` in place of the old one, the comment at its old column."""
    rest = match.group(2)
    old_text, end = _value_text(lines, i, rest)
    old = yaml.safe_load(old_text) if old_text.strip() else None
    if isinstance(value, dict) and isinstance(old, dict):
        value = deep_merge(old, value)
    if _same(old, value):
        return None
    if end > i + 1:
        raise ValueError(
            f"{key}: its value spans several lines in params.yaml; only one-line values can be "
            "rewritten, so edit this key by hand"
        )
    new_text = format_value(value)
    old_value, comment = _split_comment(rest)
    lead = old_value[: len(old_value) - len(old_value.lstrip())] or " "
    head = lines[i][: match.start(2)] + lead + new_text
    if comment:
        column = len(lines[i]) - len(rest) + len(old_value)  # where the comment starts
        gap = min(2, len(old_value) - len(old_value.rstrip()))
        head = head.ljust(column) if len(head) + gap <= column else head + " " * gap
        head += comment
    lines[i] = head
    return Change(key, old_value.strip(), new_text)


def apply_with_changes(text: str, overlay: dict) -> tuple[str, list[Change]]:
    """:func:`apply`, also returning what changed (unchanged values are left as written)."""
    lines = text.split("\n")
    changes: list[Change] = []
    top: dict[str, int] = {}  # key at column 0 -> line index
    sections: dict[str, dict[str, int]] = {}  # section -> key -> line index
    current = None
    for i, line in enumerate(lines):
        if m := _TOP_KEY.match(line):
            top[m.group(1)] = i
            value = _split_comment(m.group(2))[0].strip()
            current = m.group(1) if not value else None
            if current is not None:
                sections[current] = {}
        elif current is not None and (m := _SECTION_KEY.match(line)):
            sections[current][m.group(1)] = i
    for name, value in (overlay or {}).items():
        if name not in top:
            raise ValueError(f"overlay key {name!r} not found in params.yaml (no such section)")
        if name not in sections:
            change = _rewrite(lines, top[name], _TOP_KEY.match(lines[top[name]]), value, name)
            changes += [change] if change else []
            continue
        if not isinstance(value, dict):
            raise ValueError(f"overlay key {name!r} is a section of params.yaml: give a mapping")
        for key, sub in value.items():
            dotted = f"{name}.{key}"
            if key not in sections[name]:
                close = difflib.get_close_matches(key, list(sections[name]), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"overlay key {dotted!r} not found in section {name!r} of params.yaml{hint}"
                )
            i = sections[name][key]
            change = _rewrite(lines, i, _SECTION_KEY.match(lines[i]), sub, dotted)
            changes += [change] if change else []
    result = "\n".join(lines)
    expected = deep_merge(yaml.safe_load(text) or {}, overlay or {})
    if not _same(yaml.safe_load(result), expected):  # a guard: never write a wrong file
        raise ValueError("internal error: the rewritten params.yaml does not load as the merge")
    return result, changes


def apply(text: str, overlay: dict) -> str:
    """Rewrite params.yaml ``text`` with every value of the nested ``overlay``; comments, blank
    lines, key order and layout stay, so the file remains its own documentation. A key the text
    lacks raises ValueError naming it (a misspelt overlay must not pass silently)."""
    return apply_with_changes(text, overlay)[0]


def default_overlay() -> Path:
    """The shipped configs/paper.yaml: beside the package in a checkout, else under the cwd."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / OVERLAY_NAME).is_file():
            return root / OVERLAY_NAME
    raise FileNotFoundError(f"{OVERLAY_NAME} not found; pass --overlay PATH")


def main(argv: list[str] | None = None) -> int:
    """CLI: apply the overlay, validate the result with load_params, write it, list the changes."""
    from skinr1.config import SECTIONS, load_params

    parser = argparse.ArgumentParser(
        prog="python -m skinr1 paper-params",
        description="Rewrite params.yaml with the paper's values (configs/paper.yaml), "
        "keeping every comment.",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params.yaml")
    parser.add_argument(
        "--overlay", type=Path, help=f"values to apply (default: the shipped {OVERLAY_NAME})"
    )
    parser.add_argument("--out", type=Path, help="where to write (default: overwrite --params)")
    args = parser.parse_args(argv)
    overlay_path = args.overlay or default_overlay()
    out = args.out or args.params
    try:
        text = args.params.read_text(encoding="utf-8")
        overlay = yaml.safe_load(overlay_path.read_text(encoding="utf-8")) or {}
        if not isinstance(overlay, dict):
            raise ValueError(f"{overlay_path}: must be a mapping of sections")
        result, changes = apply_with_changes(text, overlay)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(result)
            load_params(tmp, require=tuple(SECTIONS))  # a file no stage accepts is not written
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for change in changes:
        print(change)
    print(f"{out}: {len(changes)} value(s) changed from {overlay_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
