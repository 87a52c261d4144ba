"""Model cards: each saved adapter describes itself in a README.md that the Hugging Face Hub and
``peft`` users recognise (front matter with ``base_model`` and ``library_name: peft``), with the
stage's parameters, its data, its training curve's ends and, once evaluated, its headline metrics.

The training stages write the card into the adapter folder; the evaluation stage, which may not
rewrite another stage's DVC outputs, writes the same card with its metrics filled in to
``<evaluation.out>/cards/<model>.md``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import yaml

from skinr1.config import Params

TITLES = {
    "sft": "SFT on SkinRationale (§3.2.1)",
    "sft_rl": "Skin-R1: SFT, then GRPO (§3.2.2)",
    "rl_without_sft": "GRPO without SFT (the ablation of Table 4)",
}
# The params sections that shape each kind of adapter.
SECTIONS = {"sft": ("model", "lora", "sft", "compute"),
            "grpo": ("model", "lora", "grpo", "compute", "data")}  # fmt: skip


def render(P: Params, model: str, adapter: Path | str,
           metrics: dict[str, float] | None = None) -> str:  # fmt: skip
    """The card of adapter ``model`` (``sft``, ``sft_rl`` or ``rl_without_sft``) saved in
    ``adapter``, from the params it was trained with and the files beside it (skinr1.json with
    the training data's description, log_history.json); ``metrics``: its headline metrics."""
    from huggingface_hub import ModelCardData

    from skinr1.training import RUN_FILE

    adapter = Path(adapter)
    record = json.loads((adapter / RUN_FILE).read_text())
    history = json.loads((adapter / "log_history.json").read_text())
    stage = "sft" if model == "sft" else "grpo"
    key = "loss" if stage == "sft" else "reward"
    curve = [h[key] for h in history if key in h and "train_runtime" not in h]
    steps = max((h.get("step", 0) for h in history), default=0)
    front = ModelCardData(
        base_model=P.model.base, library_name="peft", pipeline_tag="image-text-to-text",
        tags=[f"base_model:adapter:{P.model.base}", "lora", "trl", stage, "skin-r1",
              "dermatology"],
    )  # fmt: skip
    params = {"seed": P.seed, **{s: P[s] for s in SECTIONS[stage]}}
    if stage == "grpo":
        params["grpo_runs"] = {model: P.grpo_runs.get(model)}
    chain = [*record["merged"], str(adapter)]
    load = "\n".join(
        ["from peft import PeftModel", "from transformers import Qwen2_5_VLForConditionalGeneration",
         "", f"model = Qwen2_5_VLForConditionalGeneration.from_pretrained({P.model.base!r})",
         *(f"model = PeftModel.from_pretrained(model, {a!r}).merge_and_unload()"
           for a in chain[:-1]),
         f"model = PeftModel.from_pretrained(model, {chain[-1]!r})"]
    )  # fmt: skip
    seconds = record.get("step_seconds") or []
    lines = [
        "---", front.to_yaml(), "---", "",
        f"# {TITLES[model]}", "",
        f"A LoRA adapter for `{P.model.base}`, trained by the skinr1 stage `{stage}`"
        + (f" (run `{model}`)" if stage == "grpo" else "")
        + f" with `{record['trainer']}`, seed {P.seed}. It reimplements *Skin-R1: Toward "
        "Trustworthy Clinical Reasoning for Dermatological Diagnosis* (arXiv 2511.14900).", "",
        "## Loading", "", "```python", load, "```", "",
        f"KL reference during training: {record['reference']}." if record.get("reference")
        else "", "",
        "## Training data", "",
        *(f"- {k}: {v}" for k, v in record.get("data", {}).items()), "",
        "## Training", "",
        f"- optimiser steps: {steps}",
        f"- logged {key}: {curve[0]:.4f} (first) -> {curve[-1]:.4f} (last), {len(curve)} points"
        if curve else f"- logged {key}: none",
        f"- median seconds per step: {statistics.median(seconds):.3f} (on the machine that "
        "trained it)" if seconds else "- seconds per step: not recorded",
        "- every logged value: `log_history.json`; run record: `skinr1.json`", "",
        "## Evaluation", "",
    ]  # fmt: skip
    if metrics:
        lines += ["Headline metrics on the held-out test splits (strict answer extraction; "
                  "per dataset in the evaluation report):", "",
                  "| metric | value |", "|---|---|",
                  *(f"| {k} | {v:.4f} |" for k, v in metrics.items()), ""]  # fmt: skip
    else:
        lines += [f"Not in this card: the evaluate stage writes this adapter's headline metrics to "
                  f"`{P.evaluation.out}/headline/{model}.json` and this card with them to "
                  f"`{P.evaluation.out}/cards/{model}.md`.", ""]  # fmt: skip
    lines += ["## Parameters", "", "The parameters (params.yaml) that shaped this adapter:", "",
              "```yaml", yaml.safe_dump(params, sort_keys=False).rstrip(), "```", ""]  # fmt: skip
    return "\n".join(lines)


def write(P: Params, model: str, adapter: Path | str, *, data: dict[str, object]) -> Path:
    """Record ``data`` (what the adapter was trained on) in its skinr1.json and replace PEFT's
    template README.md by the card; on the main process only."""
    from skinr1.training import RUN_FILE

    adapter = Path(adapter)
    record = json.loads((adapter / RUN_FILE).read_text())
    (adapter / RUN_FILE).write_text(json.dumps({**record, "data": data}, indent=1))
    path = adapter / "README.md"
    path.write_text(render(P, model, adapter))
    return path
