"""The seed sweep's table: each claim per seed, and the seeds it holds in."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # the tool imports its sibling dvc_experiment
spec = importlib.util.spec_from_file_location("seed_sweep", ROOT / "tools" / "seed_sweep.py")
seed_sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed_sweep)


def _claim(name, diff, lo, hi, holds):
    return {"claim": name, "set": "disease", "diff": diff, "ci_low": lo, "ci_high": hi, "n": 554,
            "holds": holds}  # fmt: skip


def test_summary_counts_the_seeds_each_claim_holds_in():
    claims = {
        1234: [_claim("SFT beats base", 0.25, 0.21, 0.30, True), _claim("RL adds", 0.13, 0.09, 0.16, True)],
        1: [_claim("SFT beats base", 0.20, 0.15, 0.24, True), _claim("RL adds", 0.01, -0.02, 0.04, False)],
        2: [_claim("SFT beats base", 0.22, 0.18, 0.27, True), _claim("RL adds", -0.05, -0.08, -0.02, False)],
    }  # fmt: skip
    summary = seed_sweep.summarise(claims)
    assert [r["holds_in"] for r in summary] == [[1234, 1, 2], [1234]]
    assert [summary[1]["seeds"][s]["verdict"] for s in (1234, 1, 2)] == [
        "holds", "no difference", "opposite"]  # fmt: skip
    table = seed_sweep.render(summary).splitlines()
    assert table[0] == "| claim (set) | seed 1234 | seed 1 | seed 2 | holds in |"
    assert table[2] == ("| SFT beats base (disease) | +0.250 [+0.21, +0.30] holds | "
                        "+0.200 [+0.15, +0.24] holds | +0.220 [+0.18, +0.27] holds | 3 of 3 |")  # fmt: skip
    assert table[3].endswith("| -0.050 [-0.08, -0.02] opposite | 1 of 3 |")


def test_claims_must_line_up_across_seeds():
    claims = {1234: [_claim("a", 0.1, 0.0, 0.2, False)], 1: [_claim("b", 0.1, 0.0, 0.2, False)]}
    with pytest.raises(ValueError, match="seed 1: claim 0 is 'b', not 'a'"):
        seed_sweep.summarise(claims)


def test_the_workspace_seed_is_not_rerun(monkeypatch):
    monkeypatch.setattr(seed_sweep, "run_experiment", lambda *a: pytest.fail("ran"))
    with pytest.raises(SystemExit, match="seed 1234 is params.yaml's"):
        seed_sweep.main(["1234"])


def _commit(repo: Path, path: str, text: str | None = None) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(path if text is None else text)
    run = {"cwd": repo, "check": True, "capture_output": True, "text": True}
    subprocess.run(["git", "add", path], **run)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", path], **run
    )
    return subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()


def _experiment(repo: Path, name: str, params: str) -> str:
    """What `dvc exp run -n name` leaves: a commit on top of HEAD with its params.yaml, under
    refs/exps/<baseline>/<name>; HEAD stays where it was."""
    run = {"cwd": repo, "check": True, "capture_output": True, "text": True}
    base = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
    exp = _commit(repo, "params.yaml", params)
    ref = f"refs/exps/{base[:2]}/{base[2:]}/{name}"
    subprocess.run(["git", "update-ref", ref, exp], **run)
    subprocess.run(["git", "reset", "-q", "--hard", base], **run)
    return ref


PARAMS = (ROOT / "params.yaml").read_text()


def test_an_experiment_counts_while_it_ran_what_head_would_run(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    first = _commit(tmp_path, "params.yaml", PARAMS)
    # as `dvc exp run -S seed=1` writes it: the seed changed, "no" unquoted (YAML 1.1: false)
    seed1 = PARAMS.replace("seed: 1234", "seed: 1").replace('"no"', "no")
    ref = _experiment(tmp_path, "seed-1", seed1)
    _commit(tmp_path, "README.md")
    _commit(tmp_path, "tests/test_x.py")
    assert seed_sweep.experiment_ref(1, root=tmp_path) == (ref, first)
    with pytest.raises(SystemExit, match="no experiment ran HEAD's pipeline as seed-2 would"):
        seed_sweep.experiment_ref(2, root=tmp_path)
    _commit(tmp_path, "skinr1/rewards.py")
    with pytest.raises(
        SystemExit,
        match=r"experiment seed-1 is of .*, and its skinr1/rewards.py differ from HEAD's: rerun it with `python tools/seed_sweep.py 1`",
    ):
        seed_sweep.experiment_ref(1, root=tmp_path)


def test_a_variant_becomes_the_replicate_once_params_yaml_adopts_it(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    _commit(tmp_path, "params.yaml", PARAMS)
    deep = PARAMS.replace("deep_question_repeat: 1 ", "deep_question_repeat: 4 ")
    assert deep != PARAMS
    ref = _experiment(tmp_path, "deep4-seed-1", deep.replace("seed: 1234", "seed: 1"))
    variant = ["grpo.deep_question_repeat=4"]
    assert seed_sweep.experiment_ref(1, root=tmp_path, variant="deep4", overrides=variant)[0] == ref
    with pytest.raises(SystemExit, match="no experiment ran HEAD's pipeline as seed-1 would"):
        seed_sweep.experiment_ref(1, root=tmp_path)  # the committed configuration: not run
    _commit(tmp_path, "params.yaml", deep)
    assert seed_sweep.experiment_ref(1, root=tmp_path)[0] == ref
    with pytest.raises(
        SystemExit, match="experiment deep4-seed-1 is of .*, and its params.yaml differ"
    ):
        seed_sweep.experiment_ref(
            1, root=tmp_path, variant="deep4", overrides=["grpo.deep_question_repeat=3"]
        )


def _answers(model, right_by_depth, kind="disease", tag=""):
    """One record per question; ``right_by_depth`` maps a depth to its correct flags."""
    return [{"model": model, "set": kind, "id": f"{kind}-{d}-{i}", "depth": d,
             "dataset": "HAM10000" if i % 2 else "derm7pt", "correct": ok,
             "response": f"{tag}{ok}"}
            for d, flags in right_by_depth.items() for i, ok in enumerate(flags)]  # fmt: skip


def test_a_configuration_is_compared_with_the_committed_one_question_by_question():
    sft = _answers("sft", {1: [True] * 20, 2: [True] * 4 + [False] * 16})
    committed = sft + _answers("sft_rl", {1: [True] * 16 + [False] * 4, 2: [False] * 20})
    variant = sft + _answers("sft_rl", {1: [True] * 20, 2: [True] * 2 + [False] * 18}, tag="v")
    out = seed_sweep.against_committed(variant, committed, seed=0)
    assert list(out) == ["sft", "sft_rl"]  # MODEL_LABELS' order; no base answers here
    assert out["sft"]["identical"] and not out["sft_rl"]["identical"]
    d = out["sft_rl"]["slices"]["disease"]
    assert (d["committed"]["value"], d["variant"]["value"]) == (16 / 40, 22 / 40)
    assert d["variant - committed"]["value"] == pytest.approx(6 / 40)
    assert d["variant - committed"]["n"] == 40
    assert out["sft_rl"]["slices"]["disease, depth 1"]["variant - committed"]["ci_low"] > 0
    table = seed_sweep.render_against({1234: out, 1: out}).splitlines()
    assert table[2] == "| SFT | every question | the same answers | the same answers |"
    assert table[3].startswith("| Skin-R1 (SFT + RL) | disease | 0.400 -> 0.550, +0.150 [+")
    assert table[3].endswith("(n = 40) |")
    assert len(table) == 2 + 1 + 3  # SFT's one row, three of Skin-R1's slices (no hierarchical)


def test_configurations_of_different_questions_are_refused():
    committed = _answers("sft_rl", {1: [True, False]})
    variant = _answers("sft_rl", {1: [True, False, True]})
    with pytest.raises(SystemExit, match="sft_rl, disease: the configurations answered different"):
        seed_sweep.against_committed(variant, committed, seed=0)


def test_overrides_need_a_name(capsys):
    with pytest.raises(SystemExit):
        seed_sweep.main(["--set", "grpo.deep_question_repeat=4", "1"])
    assert "--set and --name go together" in capsys.readouterr().err


def test_a_configuration_names_its_experiments_and_the_command_to_rerun_them():
    assert seed_sweep.experiment_name(2) == "seed-2"
    assert seed_sweep.experiment_name(2, "deep4") == "deep4-seed-2"
    assert seed_sweep.rerun_command(2, "deep4", ["grpo.deep_question_repeat=4"]) == (
        "python tools/seed_sweep.py --name deep4 --set grpo.deep_question_repeat=4 2")  # fmt: skip
