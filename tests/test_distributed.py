"""The multi-process path on this CPU: ``accelerate launch`` with two processes (DDP over gloo)
runs SFT and both GRPO runs at micro scale through ``python -m skinr1``, and the adapters it
writes load and evaluate like those of a one-process run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skinr1.config import load_params
from skinr1.launch import command
from skinr1.trajectories import synthesize_configured

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _launch(P, stage: str, *extra: str) -> str:
    cmd = command(P, stage, "params.yaml", *extra)
    assert cmd[1:4] == ["-m", "accelerate.commands.launch", "--config_file"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_two_processes_train_sft_and_both_grpo_runs_and_the_adapters_evaluate(project_copy):
    cwd = os.getcwd()
    os.chdir(project_copy)
    try:
        raw = yaml.safe_load(Path("params.yaml").read_text())
        raw["compute"].update(num_processes=2,
                              accelerate_config=str(REPO / "configs/accelerate/ddp.yaml"))  # fmt: skip
        raw["sft"].update(batch_size=4, max_steps=2, replay_fraction=0.0)  # 2 per process
        raw["grpo"].update(prompts_per_step=2, num_generations=2, max_steps=2)
        raw["evaluation"].update(max_samples=4, sets=["disease", "lesion"])
        Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        P = load_params("params.yaml")
        synthesize_configured(P)

        log = _launch(P, "sft")
        adapter = Path(P.sft.out)
        assert (adapter / "adapter_model.safetensors").exists()
        assert not Path(str(adapter) + ".partial").exists()
        hist = [h for h in json.loads((adapter / "log_history.json").read_text()) if "loss" in h]
        assert [h["step"] for h in hist] == [1, 2]
        assert "Traceback" not in log

        for run in ("sft_rl", "rl_without_sft"):
            out = P.grpo_adapter(run)
            _launch(P, "grpo", "--run", run)
            log_history = json.loads((Path(out) / "log_history.json").read_text())
            rewards = [h for h in log_history if "reward" in h]
            assert [h["step"] for h in rewards] == [1, 2]
            # 2 questions x 2 completions per step over 2 processes: 1 question per process.
            assert (Path(out) / "adapter_model.safetensors").exists()
            assert json.loads((Path(out) / "skinr1.json").read_text())["merged"] == []

        # An interrupted run resumes: with its last checkpoint gone (killed after step 1's
        # checkpoint), the same command starts at step 1's checkpoint and trains step 2 only.
        (run_dir,) = Path("models/checkpoints").glob("grpo-rl_without_sft-*")
        assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == [
            "checkpoint-1",
            "checkpoint-2",
        ]
        shutil.rmtree(run_dir / "checkpoint-2")
        _launch(P, "grpo", "--run", "rl_without_sft")
        out = P.grpo_adapter("rl_without_sft")
        record = json.loads((out / "skinr1.json").read_text())
        assert len(record["step_seconds"]) == 1  # this process ran one step
        log_history = json.loads((out / "log_history.json").read_text())
        assert [h["step"] for h in log_history if "reward" in h] == [1, 2]

        # Evaluation split over the two processes gathers every answer once, in order.
        _launch(P, "evaluate")
        records = [json.loads(x) for x in Path("data/eval_records.jsonl").read_text().splitlines()]
        per = {}
        for r in records:
            per.setdefault((r["model"], r["set"]), []).append(r["id"])
        assert set(per) == {(m, s) for m in ("base", "sft", "rl_without_sft", "sft_rl")
                            for s in ("disease", "lesion")}  # fmt: skip
        for ids in per.values():
            assert len(ids) == len(set(ids)) == 4
        metrics = json.loads(Path("metrics/metrics.json").read_text())
        assert set(metrics["disease"]) == {"base", "sft", "rl_without_sft", "sft_rl"}
    finally:
        os.chdir(cwd)


def test_one_process_command_is_plain_python(micro_project):
    P = load_params(micro_project / "params.yaml")
    assert command(P, "grpo", "p.yaml", "--run", "sft_rl") == [
        sys.executable, "-m", "skinr1", "grpo", "--params", "p.yaml", "--run", "sft_rl",
    ]  # fmt: skip
