"""``python -m skinr1 gpu-check --dry-run``: the GPU check's phases on this CPU, tiny widths."""

import json
import subprocess
import sys

import pytest

from skinr1.gpu_check import WIDE, report


@pytest.mark.slow
def test_dry_run_runs_every_phase_through_the_stage_functions(tmp_path):
    work = tmp_path / "check"
    proc = subprocess.run([sys.executable, "-m", "skinr1", "gpu-check", "--dry-run", "--workdir",
                           str(work), "--report", str(tmp_path / "r.md")],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((work / "report.json").read_text())
    assert [r["phase"] for r in results] == ["sft", "grpo-trl", "evaluate"]
    sft, grpo, ev = results
    assert sft["trainer"] == "trl.trainer.sft_trainer.SFTTrainer" and sft["steps"] == 2
    assert grpo["trainer"] == "trl.trainer.grpo_trainer.GRPOTrainer" and grpo["steps"] == 2
    assert grpo["kl_to_sft"] is True and grpo["merged"] == [str(work / "models/sft")]
    assert all(r["finite"] for r in results) and len(sft["values"]) == 2
    assert ev["questions"] == 3 * 3  # base, SFT and SFT+RL answer 3 disease questions each
    md = (tmp_path / "r.md").read_text()
    assert md.startswith("device: CPU; model: tiny widths (dry run)") and "| grpo-trl |" in md


def test_report_states_the_unsloth_speed_ratio_and_failures():
    row = {"trainer": "T", "reference": "r", "kl_to_sft": True, "steps": 5, "peak_gib": 1.0,
           "peak_kind": "GPU", "finite": True}  # fmt: skip
    text = report([{"phase": "grpo-trl", **row, "median_step_s": 3.0},
                   {"phase": "grpo-unsloth", **row, "median_step_s": 1.5},
                   {"phase": "evaluate", "error": "exit status 1"}], dry_run=False)  # fmt: skip
    assert "Unsloth GRPO step 2.00x faster than plain TRL (goal: >= 1.5x)" in text
    assert "| evaluate | failed: exit status 1 |" in text
    assert "| grpo-unsloth | T | r | yes | 5 | 1.500 | 1.00 GPU | yes |" in text


def test_the_wide_model_has_the_7b_widths_of_the_gpu_notes():
    assert (WIDE["hidden_size"], WIDE["intermediate_size"], WIDE["num_heads"]) == (3584, 18944, 28)
    assert (WIDE["num_kv_heads"], WIDE["vision_hidden"], WIDE["vision_intermediate"]) == (
        4,
        1280,
        3420,
    )
    assert WIDE["hidden_size"] // WIDE["num_heads"] == 128 and WIDE["num_layers"] == 4
