"""``python -m skinr1 gpu-check``: the paper-scale path on a CUDA machine without internet.

It builds a randomly initialised Qwen2.5-VL with the 7B's widths and 4 text / 4 vision layers
(1.08 B parameters; ``../shared/reference/gpu-notes.md``), demo data, and SkinRationale, then runs
SFT, GRPO with engine ``trl`` and with engine ``unsloth``, and evaluation, each through the
project's own stage functions in a fresh interpreter (Unsloth must be imported first), with the
paper parameter set (configs/paper.yaml) and budgets cut to a few steps. Per phase it reports the
trainer class, what the KL term regularises toward, step times, peak memory and whether every
loss and reward is finite, and the Unsloth / TRL GRPO step-time ratio.

``--dry-run`` runs the same phases on the CPU with tiny widths and engine trl only (a test does).
The 152k-token vocabulary, 1024-token completions and vLLM are not part of the check: the
project's tokenizer has a few thousand tokens and vLLM cannot share the machine's torch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent

# Qwen2.5-VL-7B's widths with 4 text and 4 vision layers; per-layer costs carry over to 7B.
WIDE = {"vocab_size": 3000, "hidden_size": 3584, "intermediate_size": 18944, "num_layers": 4,
        "num_heads": 28, "num_kv_heads": 4, "vision_depth": 4, "vision_hidden": 1280,
        "vision_heads": 16, "vision_intermediate": 3420, "image_size": 448}  # fmt: skip
TINY = {"vocab_size": 800, "hidden_size": 64, "intermediate_size": 128, "num_layers": 1,
        "num_heads": 2, "num_kv_heads": 1, "vision_depth": 1, "vision_hidden": 32,
        "vision_heads": 2, "image_size": 56}  # fmt: skip

# Budgets: (GPU, dry run).
BUDGET = {
    "sft": ({"max_steps": 8, "batch_size": 16}, {"max_steps": 2, "batch_size": 4}),
    "grpo": ({"max_steps": 6, "prompts_per_step": 16, "num_generations": 4,
              "max_completion_length": 128},
             {"max_steps": 2, "prompts_per_step": 2, "num_generations": 2,
              "max_completion_length": 8}),
    "evaluation": ({"max_samples": 64, "max_new_tokens": 64, "sets": ["disease"]},
                   {"max_samples": 3, "max_new_tokens": 8, "sets": ["disease"]}),
}  # fmt: skip


def check_params(work: Path, *, dry_run: bool, engine: str) -> Path:
    """params.yaml for one phase: the shipped file with the paper set applied, the model and
    data swapped for the check's own, the budgets cut."""
    from skinr1.paper_params import deep_merge, default_overlay

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw = deep_merge(raw, yaml.safe_load(default_overlay().read_text()))
    side = (TINY if dry_run else WIDE)["image_size"]
    i = 1 if dry_run else 0
    raw = deep_merge(raw, {
        "demo": {"root": str(work / "data"), "scale": 0.1, "test_scale": 1.0,
                 "image_size": 64 if dry_run else 128},
        "data": {"root": str(work / "data"), "textbook_root": str(work / "data")},
        "model": {"base": str(work / "model"), "dtype": "float32" if dry_run else "bfloat16",
                  "max_pixels": side * side, "min_pixels": side * side},
        "compute": {"num_processes": 1, "mixed_precision": "no" if dry_run else "bf16"},
        "trajectories": {"out": str(work / "skinrationale")},
        "sft": {"out": str(work / "models/sft"), "logging_steps": 1, **BUDGET["sft"][i]},
        "grpo": {"engine": engine, "use_vllm": False, "out": str(work / f"models/grpo-{engine}"),
                 "logging_steps": 1, **BUDGET["grpo"][i]},
        "evaluation": {"out": str(work / "metrics"), **BUDGET["evaluation"][i]},
    })  # fmt: skip
    raw["grpo_runs"] = {"sft_rl": raw["sft"]["out"]}  # the ablation is not part of the check
    path = work / f"params-{engine}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def prepare(work: Path, *, dry_run: bool) -> None:
    """The model, the demo data and SkinRationale the phases read."""
    import torch

    from skinr1.config import load_params
    from skinr1.embedded.demo_data import main as demo_main
    from skinr1.embedded.tiny_model import TinyConfig, build_tiny_model
    from skinr1.trajectories import synthesize_configured

    work.mkdir(parents=True, exist_ok=True)
    P = load_params(check_params(work, dry_run=dry_run, engine="trl"))
    if not (work / "model" / "config.json").exists():
        with torch.random.fork_rng():
            build_tiny_model(work / "model", TinyConfig(**(TINY if dry_run else WIDE)), seed=P.seed)
    if not (work / "data" / "textbook").exists():
        demo_main(["--params", str(P.source)])
    synthesize_configured(P)


def _peak() -> tuple[str, float]:
    import resource

    import torch

    if torch.cuda.is_available():
        return "GPU", torch.cuda.max_memory_allocated() / 2**30
    return "CPU RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def phase(name: str, params_file: Path, out: Path) -> dict:
    """One phase in this (fresh) process, through the stage functions the notebooks call."""
    from skinr1.config import load_params
    from skinr1.launch import activate_engine, preflight
    from skinr1.training import RUN_FILE

    P = load_params(params_file)
    stage = {"sft": "sft", "evaluate": "evaluate"}.get(name, "grpo")
    preflight(P, stage)
    activate_engine(P.grpo.engine if stage == "grpo" else "trl")
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result: dict = {"phase": name}
    if stage == "evaluate":
        from skinr1.evaluation import run

        records = run(P)
        wall = time.perf_counter() - t0
        result.update(trainer=None, reference=None, questions=len(records),
                      seconds_per_answer=wall / max(1, len(records)),
                      finite=all(r["response"] is not None for r in records))  # fmt: skip
    else:
        if stage == "sft":
            from skinr1.sft import run

            history, key, adapter = run(P), "loss", P.sft.out
        else:
            from skinr1.grpo import run

            history, key, adapter = run(P, "sft_rl"), "reward", P.grpo_adapter("sft_rl")
        record = json.loads((Path(adapter) / RUN_FILE).read_text())
        steps = record["step_seconds"]
        steady = steps[1:] or steps  # the first step pays for compilation and warm-up
        values = [h[key] for h in history]
        ref = record["reference"] or ""
        result.update(trainer=record["trainer"], reference=record["reference"],
                      kl_to_sft=("'ref'" in ref or "sft-merged" in ref) if stage == "grpo" else None,
                      merged=record["merged"], steps=len(steps), step_seconds=steps,
                      median_step_s=statistics.median(steady), values=values,
                      finite=bool(values) and all(math.isfinite(v) for v in values))  # fmt: skip
    kind, peak = _peak()
    result.update(wall_s=time.perf_counter() - t0, peak_kind=kind, peak_gib=peak)
    out.write_text(json.dumps(result, indent=1))
    return result


def report(results: list[dict], *, dry_run: bool) -> str:
    """A markdown report: one row per phase and the Unsloth / TRL GRPO step-time ratio."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    model = "tiny widths (dry run)" if dry_run else "Qwen2.5-VL, 7B widths, 4+4 layers"
    lines = [f"device: {device}; model: {model}", "",
             "| phase | trainer | KL reference | KL to SFT | steps | median step (s) | peak (GiB) "
             "| finite |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    by = {r["phase"]: r for r in results}
    for r in results:
        if r.get("error"):
            lines.append(f"| {r['phase']} | failed: {r['error']} | | | | | | no |")
            continue
        step = f"{r['median_step_s']:.3f}" if "median_step_s" in r else (
            f"{r['seconds_per_answer']:.3f} per answer")  # fmt: skip
        kl = {None: "-", True: "yes", False: "NO"}[r.get("kl_to_sft")]
        lines.append(f"| {r['phase']} | {r['trainer'] or '-'} | {r['reference'] or '-'} | {kl} | "
                     f"{r.get('steps', r.get('questions'))} | {step} | "
                     f"{r['peak_gib']:.2f} {r['peak_kind']} | {'yes' if r['finite'] else 'NO'} |")  # fmt: skip
    if "median_step_s" in by.get("grpo-trl", {}) and "median_step_s" in by.get("grpo-unsloth", {}):
        speedup = by["grpo-trl"]["median_step_s"] / by["grpo-unsloth"]["median_step_s"]
        lines += ["", f"Unsloth GRPO step {speedup:.2f}x faster than plain TRL (goal: >= 1.5x)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m skinr1 gpu-check")
    ap.add_argument("--dry-run", action="store_true", help="tiny widths on the CPU, engine trl")
    ap.add_argument("--workdir", type=Path, default=Path("gpu-check"))
    ap.add_argument("--report", type=Path, default=None, help="also write the markdown here")
    ap.add_argument("--phase", default=None, help=argparse.SUPPRESS)  # internal: one phase
    args = ap.parse_args(argv)
    work = args.workdir.resolve()
    if args.phase:
        engine = args.phase.split("-", 1)[1] if args.phase.startswith("grpo-") else "trl"
        phase(args.phase, work / f"params-{engine}.yaml", work / f"phase-{args.phase}.json")
        return 0
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu-check needs a CUDA GPU; use --dry-run to check the phases on this CPU")
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    prepare(work, dry_run=args.dry_run)
    phases = ["sft", "grpo-trl", *([] if args.dry_run else ["grpo-unsloth"]), "evaluate"]
    for engine in ("trl", "unsloth"):
        check_params(work, dry_run=args.dry_run, engine=engine)
    results = []
    for name in phases:
        print(f"== {name}", flush=True)
        out = work / f"phase-{name}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "skinr1", "gpu-check", "--workdir", str(work), "--phase", name]
        proc = subprocess.run(cmd, cwd=work, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if proc.returncode != 0 or not out.exists():
            results.append({"phase": name, "error": f"exit status {proc.returncode}"})
            continue
        results.append(json.loads(out.read_text()))
    text = report(results, dry_run=args.dry_run)
    print(text)
    (work / "report.json").write_text(json.dumps(results, indent=1))
    if args.report:
        args.report.write_text(text + "\n")
    ok = all(r.get("finite") and r.get("kl_to_sft") is not False for r in results)
    return 0 if ok else 1
