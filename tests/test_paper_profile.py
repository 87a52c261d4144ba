"""The paper parameter set (configs/paper.yaml) end to end at micro scale, with only the model
swapped for the tiny one and the long budgets cut to a few micro steps: Appendix D prompts,
trajectory types 1-3 with full rationales, LoRA only, paper batch semantics (16 SFT examples;
16 prompts x K=4 completions per GRPO step), the SFT adapter merged under a fresh GRPO LoRA.
Any crash of the paper path shows here first."""

import json
import os
from pathlib import Path

import pytest
import yaml

from skinr1.config import load_params
from skinr1.paper_params import deep_merge, default_overlay

pytestmark = pytest.mark.slow

# What the CPU cannot run as the paper does: the model, devices, engine and budgets.
SWAP = {
    "data": {"root": "data/demo", "textbook_root": "data/demo"},
    "model": {"base": "models/base", "dtype": "float32", "max_pixels": 3136, "min_pixels": 3136},
    "compute": {"num_processes": 1, "mixed_precision": "no"},
    "sft": {"max_steps": 2},
    "grpo": {"engine": "trl", "use_vllm": False, "max_steps": 2, "max_completion_length": 16},
    "evaluation": {"max_samples": 3, "max_new_tokens": 16, "sets": ["disease", "lesion", "ddx"]},
}


def test_paper_profile_runs_every_stage_on_the_tiny_model(project_copy):
    from skinr1 import evaluation, grpo, sft
    from skinr1.launch import run_stage
    from skinr1.prompts import template
    from skinr1.trajectories import synthesize_configured

    cwd = os.getcwd()
    os.chdir(project_copy)
    try:
        micro = yaml.safe_load(Path("params.yaml").read_text())
        paper = yaml.safe_load(default_overlay().read_text())
        Path("params.yaml").write_text(yaml.safe_dump(deep_merge(deep_merge(micro, paper), SWAP)))
        P = load_params("params.yaml")
        assert P.model.prompt_style == "paper" and P.sft.rationale == "full"
        assert P.sft.trajectory_types == [1, 2, 3] and P.lora.modules_to_save == []
        assert (P.sft.batch_size, P.grpo.prompts_per_step, P.grpo.num_generations) == (16, 16, 4)
        assert P.grpo.sft_init == "merge"

        trajs, _ = synthesize_configured(P)
        assert {t.type for t in trajs} == {1, 2, 3}

        run_stage(P, sft, "params.yaml")
        sft = json.loads((Path(P.sft.out) / "adapter_config.json").read_text())
        assert sft["r"] == 64 and sft["lora_alpha"] == 32 and not sft["modules_to_save"]
        for run in ("sft_rl", "rl_without_sft"):
            run_stage(P, grpo, "params.yaml", "--run", run)
        out = P.grpo_adapter("sft_rl")
        assert json.loads((out / "skinr1.json").read_text())["merged"] == [P.sft.out]
        # The model card tells a PEFT user how to load it: merge the SFT adapter, then this one.
        card = (out / "README.md").read_text()
        assert "library_name: peft" in card and "sft_init: merge" in card
        code = card.split("```python\n")[1].split("```")[0]
        assert f"PeftModel.from_pretrained(model, {P.sft.out!r}).merge_and_unload()" in code
        scope: dict = {}
        exec(code, scope)
        from peft import PeftModel

        assert isinstance(scope["model"], PeftModel)
        log = json.loads((out / "log_history.json").read_text())
        assert [h["step"] for h in log if "reward" in h] == [1, 2]

        run_stage(P, evaluation, "params.yaml")
        metrics = json.loads(Path("metrics/metrics.json").read_text())
        assert set(metrics) == {"disease", "lesion", "ddx"}
        assert set(metrics["disease"]) == {"base", "sft", "rl_without_sft", "sft_rl"}
        records = [json.loads(x) for x in Path("data/eval_records.jsonl").read_text().splitlines()]
        assert len(records) == 4 * 3 * 3
        assert template("rl", "paper").startswith("You are a medical vision-language assistant")
    finally:
        os.chdir(cwd)
