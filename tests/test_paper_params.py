"""configs/paper.yaml and `python -m skinr1 paper-params`: the paper's values, applied in place."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from skinr1.config import SECTIONS, load_params
from skinr1.paper_params import apply, deep_merge, format_value, main

REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params.yaml"
OVERLAY = REPO / "configs" / "paper.yaml"

_KEY = re.compile(r"^  ([A-Za-z_]\w*):")
_SECTION = re.compile(r"^([A-Za-z_]\w*):\s*(#.*)?$")
_TAIL = re.compile(r"(?:^|\s)(#.*)$")


def paper_keys(text: str) -> set[str]:
    """Dotted keys whose comment (its own line's tail or the indented comment lines below it)
    contains 'paper:', read from the text at test time so new keys are caught."""
    keys: set[str] = set()
    section = key = None
    for line in text.splitlines():
        if m := _SECTION.match(line):
            section, key = m.group(1), None
        elif section and (m := _KEY.match(line)):
            key = f"{section}.{m.group(1)}"
        elif not re.match(r"^\s+#", line):  # anything but an indented comment line ends a key
            key = None
            continue
        tail = _TAIL.search(line)
        if key and tail and "paper:" in tail.group(1):
            keys.add(key)
    return keys


def dotted(overlay: dict) -> set[str]:
    return {f"{s}.{k}" for s, values in overlay.items() for k in values}


def comment_tails(text: str) -> Counter:
    return Counter(m.group(1) for line in text.splitlines() if (m := _TAIL.search(line)))


@pytest.fixture(scope="module")
def shipped() -> tuple[str, dict]:
    return PARAMS.read_text(encoding="utf-8"), yaml.safe_load(OVERLAY.read_text(encoding="utf-8"))


def test_shipped_overlay_gives_the_merge_validates_and_keeps_comments(shipped, tmp_path):
    text, overlay = shipped
    result = apply(text, overlay)
    assert yaml.safe_load(result) == deep_merge(yaml.safe_load(text), overlay)
    path = tmp_path / "params.yaml"
    path.write_text(result, encoding="utf-8")
    p = load_params(path, require=tuple(SECTIONS))
    assert p.grpo.learning_rate == 1e-5 and isinstance(p.grpo.learning_rate, float)
    assert p.sft.learning_rate == 3e-5 and isinstance(p.sft.learning_rate, float)
    assert p.sft.batch_size == 16 and p.sft.epochs == 4 and p.sft.max_steps == -1
    assert p.sft.trajectory_types == [1, 2, 3] and p.lora.modules_to_save == []
    assert p.grpo.num_generations == 4 and p.grpo.temperature == 1.0 and p.grpo.epochs == 1
    assert p.grpo.prompts_per_step == 16 and p.grpo.max_steps == -1
    assert p.grpo.vllm_max_model_length == 4096 and p.grpo.max_completion_length == 1024
    assert p.model.base == "Qwen/Qwen2.5-VL-7B-Instruct" and p.model.max_pixels == 448 * 448
    assert p.model.min_pixels == 3136 and p.model.dtype == "bfloat16"
    assert p.compute.num_processes == 2 and p.compute.mixed_precision == "bf16"
    assert p.data.root == "/data/skin" and p.data.textbook_root == "/data/skin"
    assert p.evaluation.max_new_tokens == 256
    # Layout: same lines, same comments; only values moved.
    assert len(result.splitlines()) == len(text.splitlines())
    assert result.endswith("\n") == text.endswith("\n")
    full = [ln for ln in text.splitlines() if ln.strip().startswith("#")]
    assert [ln for ln in result.splitlines() if ln.strip().startswith("#")] == full
    assert comment_tails(result) == comment_tails(text)
    for before, after in zip(text.splitlines(), result.splitlines(), strict=True):
        assert before.split(":")[0] == after.split(":")[0]  # same key on the same line
    assert apply(result, overlay) == result  # idempotent


def test_every_paper_comment_is_in_the_overlay_and_nothing_else(shipped):
    text, overlay = shipped
    marked, given = paper_keys(text), dotted(overlay)
    assert marked - given == set(), "params.yaml marks these 'paper:' but configs/paper.yaml lacks"
    assert given - marked == set(), "configs/paper.yaml sets keys with no 'paper:' value"
    # the multi-line comments are attributed to their key
    assert {"compute.num_processes", "sft.batch_size", "grpo.sft_init"} <= marked


def test_unknown_overlay_key_is_named(shipped):
    text, _ = shipped
    with pytest.raises(ValueError, match=r"sft\.learnin_rate.*did you mean 'learning_rate'"):
        apply(text, {"sft": {"learnin_rate": 1e-5}})
    with pytest.raises(ValueError, match=r"'sfft'"):
        apply(text, {"sfft": {"learning_rate": 1e-5}})
    with pytest.raises(
        ValueError, match=r"'sft\.vllm_max_model_length' not found in section 'sft'"
    ):
        apply(text, {"sft": {"vllm_max_model_length": 4096}})


def test_in_place_edits_keep_layout_and_quote_only_when_needed():
    text = (
        "seed: 1\n"
        "a:\n"
        "  x: 1          # c1\n"
        "                # c1 continued\n"
        '  s: "no"       # c2 # not a second comment\n'
        "  l: [1]\n"
        "  d: {1: 1, 2: 1}   # d\n"
        "  long: {p: 1,\n"
        "         q: 2}\n"
        "b:\n"
        "  x: 2  # b's x\n"
    )
    out = apply(text, {"seed": 7, "a": {"x": 2.5e-6, "s": "yes", "l": [], "d": {2: 3}}})
    assert out.splitlines() == [
        "seed: 7",
        "a:",
        "  x: 2.5e-6     # c1",
        "                # c1 continued",
        "  s: 'yes'      # c2 # not a second comment",
        "  l: []",
        "  d: {1: 1, 2: 3}   # d",
        "  long: {p: 1,",
        "         q: 2}",
        "b:",
        "  x: 2  # b's x",
    ]
    assert apply(text, {"a": {"long": {"p": 1}}}) == text  # unchanged values are not rewritten
    with pytest.raises(ValueError, match=r"a\.long"):
        apply(text, {"a": {"long": {"p": 3}}})
    assert format_value(None) == "null" and format_value([1, 2, 3]) == "[1, 2, 3]"
    assert format_value("Qwen/Qwen2.5-VL-7B-Instruct") == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert format_value(1e-5) == "1.0e-5" and yaml.safe_load(format_value(1e-5)) == 1e-5
    assert format_value(True) == "true" and format_value(0.1) == "0.1"


def test_cli_writes_out_and_leaves_params_unchanged(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_bytes(PARAMS.read_bytes())
    out = tmp_path / "paper" / "params.yaml"
    assert main(["--params", str(params), "--out", str(out)]) == 0
    assert params.read_bytes() == PARAMS.read_bytes()
    assert load_params(out, require=tuple(SECTIONS)).grpo.learning_rate == 1e-5
    printed = capsys.readouterr().out
    assert re.search(r"^sft\.learning_rate: \S+ -> 3\.0e-5$", printed, re.M)
    assert re.search(r"^grpo\.learning_rate: \S+ -> 1\.0e-5$", printed, re.M)
    # default --out overwrites --params; an explicit --overlay is honoured
    overlay = tmp_path / "o.yaml"
    overlay.write_text("sft:\n  epochs: 2\n")
    assert main(["--params", str(params), "--overlay", str(overlay)]) == 0
    assert yaml.safe_load(params.read_text())["sft"]["epochs"] == 2
    overlay.write_text("sft:\n  nope: 2\n")
    assert main(["--params", str(params), "--overlay", str(overlay)]) == 1
    assert "sft.nope" in capsys.readouterr().err
    assert yaml.safe_load(params.read_text())["sft"]["epochs"] == 2  # nothing written on error
