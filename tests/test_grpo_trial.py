"""tools/grpo_trial.py's comparison: a GRPO trial against the workspace's SFT and Skin-R1."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # the tool imports its sibling dvc_experiment
spec = importlib.util.spec_from_file_location("grpo_trial", ROOT / "tools" / "grpo_trial.py")
trial = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trial)


def _records(model, right_by_depth):
    out = []
    for depth, flags in right_by_depth.items():
        for i, ok in enumerate(flags):
            out.append({"model": model, "set": "disease", "id": f"d{depth}-{i}", "depth": depth,
                        "dataset": "HAM10000" if i % 2 else "derm7pt", "correct": ok})  # fmt: skip
    return out


def test_compare_pairs_the_trial_with_sft_and_skin_r1_per_slice():
    n = 40
    workspace = _records("sft", {1: [True] * 30 + [False] * 10, 2: [True] * 8 + [False] * 32})
    workspace += _records("sft_rl", {1: [True] * 36 + [False] * 4, 2: [False] * n})
    workspace += _records("base", {1: [False] * n, 2: [False] * n})  # not compared
    new = _records("sft_rl", {1: [True] * 36 + [False] * 4, 2: [True] * 8 + [False] * 32})
    out = trial.compare(new, workspace, seed=0)
    assert list(out) == ["disease", "disease, depth 1", "disease, depths 2-3"]  # no other set
    deep = out["disease, depths 2-3"]
    assert (deep["sft"]["value"], deep["sft_rl"]["value"], deep["trial"]["value"]) == (0.2, 0, 0.2)
    assert deep["trial - sft"]["value"] == 0 and deep["trial - sft_rl"]["value"] == pytest.approx(
        0.2
    )
    assert deep["trial - sft_rl"]["n"] == 40 and deep["trial - sft_rl"]["ci_low"] > 0
    assert out["disease"]["trial - sft_rl"]["value"] == pytest.approx(8 / 80)
    lines = trial.render({"change": "grpo.beta=0.4", "slices": out}).splitlines()
    assert lines[0] == ("| questions (n) | SFT | Skin-R1 | trial: grpo.beta=0.4 | trial - SFT "
                        "| trial - Skin-R1 |")  # fmt: skip
    assert lines[4].startswith("| disease, depths 2-3 (40) | 0.200 [")
    assert "| +0.000 [+0.000, +0.000] | +0.200 [+0." in lines[4]


def test_compare_refuses_answers_to_other_questions():
    workspace = _records("sft", {1: [True, False]}) + _records("sft_rl", {1: [True, True]})
    with pytest.raises(SystemExit, match="different questions"):
        trial.compare(_records("sft_rl", {1: [True]}), workspace, seed=0)


def test_a_trial_needs_a_grpo_change():
    with pytest.raises(SystemExit, match="needs a change"):
        trial.describe([], False)
    assert trial.describe(["grpo.beta=0.4"], True) == "grpo.beta=0.4, LM head and embeddings frozen"
    with pytest.raises(SystemExit, match=r"grpo\.\*"):
        trial.main(["x", "--set", "sft.epochs=2"])


def test_the_table_of_trials_starts_with_skin_r1_and_needs_one_workspace_run():
    workspace = []
    for model, deep in (("sft", [True] * 4 + [False] * 16), ("sft_rl", [False] * 20)):
        workspace += _records(model, {1: [True] * 10 + [False] * 10, 2: deep})
    workspace += [{**r, "set": "hierarchical", "id": "h" + r["id"]} for r in workspace]
    new = _records("sft_rl", {1: [True] * 20, 2: [False] * 20})
    new += [{**r, "set": "hierarchical", "id": "h" + r["id"]} for r in new]
    frozen = trial.compare(new, workspace, seed=0)
    results = [{"change": "LM head and embeddings frozen", "slices": frozen}]
    lines = trial.render_all(results).splitlines()
    assert lines[0].startswith("| trial (GRPO from SFT) | disease - SFT (n=40) |")
    assert lines[2].startswith("| none (Skin-R1 of the same `dvc repro`) | -0.100 [")
    assert lines[3].startswith("| LM head and embeddings frozen | +0.150 [")
    assert lines[3].endswith("| +0.250 [+0.125, +0.375] |")  # 20 of 40 against 10 of 40
    other = dict(frozen, disease=dict(frozen["disease"], sft_rl={"value": 0.5}))
    with pytest.raises(SystemExit, match="different workspace runs"):
        trial.render_all([*results, {"change": "x", "slices": other}])


def test_deep_only_keeps_the_questions_answered_below_a_top_level_category():
    import datasets

    rows = [
        {"letters": ["A", "B"], "options": ["melanoma", "basal cell carcinoma"], "answer": "B"},
        {"letters": ["A", "B"], "options": ["basal cell carcinoma", "nodular basal cell carcinoma"],
         "answer": "B"},
        {"letters": ["A", "B"], "options": ["nodular basal cell carcinoma", "melanoma"],
         "answer": "B"},
    ]  # fmt: skip
    kept = trial.deeper_only(datasets.Dataset.from_list(rows))
    assert kept["options"] == [["basal cell carcinoma", "nodular basal cell carcinoma"]]
    with pytest.raises(SystemExit, match="no RL question"):
        trial.deeper_only(datasets.Dataset.from_list(rows[:1]))
