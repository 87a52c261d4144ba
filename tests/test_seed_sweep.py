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
    monkeypatch.setattr(seed_sweep, "run_experiment", lambda seed: pytest.fail("ran"))
    with pytest.raises(SystemExit, match="seed 1234 is params.yaml's"):
        seed_sweep.main(["1234"])


def _commit(repo: Path, path: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(path)
    run = {"cwd": repo, "check": True, "capture_output": True, "text": True}
    subprocess.run(["git", "add", path], **run)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", path], **run
    )
    return subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()


def test_an_experiment_of_an_earlier_commit_counts_while_no_pipeline_input_changed(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    first = _commit(tmp_path, "params.yaml")
    ref = f"refs/exps/{first[:2]}/{first[2:]}/seed-1"
    subprocess.run(["git", "update-ref", ref, first], cwd=tmp_path, check=True)
    _commit(tmp_path, "README.md")
    _commit(tmp_path, "tests/test_x.py")
    assert seed_sweep.experiment_ref(1, root=tmp_path) == (ref, first)
    with pytest.raises(SystemExit, match="no experiment seed-2 of HEAD or its ancestors"):
        seed_sweep.experiment_ref(2, root=tmp_path)
    _commit(tmp_path, "skinr1/rewards.py")
    with pytest.raises(
        SystemExit,
        match=r"experiment seed-1 is of .*, and since then skinr1/rewards.py changed: rerun it with `python tools/seed_sweep.py 1`",
    ):
        seed_sweep.experiment_ref(1, root=tmp_path)
