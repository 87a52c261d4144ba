"""The R_gran ablation's comparison: each GRPO run against its start and the committed run."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # the tool imports its sibling dvc_experiment
spec = importlib.util.spec_from_file_location(
    "ablation", ROOT / "tools" / "granularity_ablation.py"
)
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)


def _records(model, kind, right_by_depth):
    """One record per question: ``right_by_depth`` maps a depth to its list of correct flags."""
    out = []
    for depth, flags in right_by_depth.items():
        for i, ok in enumerate(flags):
            out.append({"model": model, "set": kind, "id": f"{kind}-{depth}-{i}", "depth": depth,
                        "dataset": "HAM10000" if i % 2 else "derm7pt", "correct": ok})  # fmt: skip
    return out


def _run(model, d1, d2, h):
    return _records(model, "disease", {1: d1, 2: d2}) + _records(model, "hierarchical", {3: h})


def test_compare_reports_each_slice_against_start_and_committed():
    n = 40
    committed = _run(
        "sft", [True] * 30 + [False] * 10, [True] * 8 + [False] * 32, [True] * 6 + [False] * 34
    )
    committed += _run("sft_rl", [True] * 36 + [False] * 4, [False] * n, [False] * n)
    finest = _run("sft_rl", [True] * 30 + [False] * 10, [True] * 4 + [False] * 36, [False] * n)
    out = ablation.compare(finest, committed, "sft_rl", seed=0)
    assert list(out) == ["disease", "disease, depth 1", "disease, depths 2-3", "hierarchical"]
    d = out["disease"]
    assert (d["start"]["value"], d["paper"]["value"], d["finest"]["value"]) == (
        pytest.approx(38 / 80), pytest.approx(36 / 80), pytest.approx(34 / 80))  # fmt: skip
    assert d["paper"]["n"] == 80
    deep = out["disease, depths 2-3"]
    assert deep["paper - start"]["value"] == pytest.approx(-8 / 40)
    assert deep["finest - paper"]["value"] == pytest.approx(4 / 40)
    assert deep["finest - start"]["ci_high"] < 0  # 4 of the start's 8 right answers kept
    assert out["hierarchical"]["finest - paper"]["value"] == 0.0
    row = ablation.render({"runs": {"sft_rl": out}}).splitlines()[2]
    assert row.startswith("| Skin-R1 (SFT + RL) | disease (80) | 0.475 [")


def test_compare_refuses_runs_of_different_questions():
    committed = _run("sft", [True], [False], [True]) + _run("sft_rl", [True], [True], [False])
    finest = _run("sft_rl", [True, False], [True], [False])
    with pytest.raises(SystemExit, match="sft_rl, disease: the runs answered different questions"):
        ablation.compare(finest, committed, "sft_rl", seed=0)
