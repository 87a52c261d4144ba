"""How a stage runs: in the notebook's kernel, or as ``accelerate launch -m skinr1 <stage>`` with
one process per GPU; which engine trains; and the checks that stop a stage at its start when
the machine cannot do what params.yaml asks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from skinr1.config import Params

STAGES = ("sft", "grpo", "evaluate")


class LaunchError(RuntimeError):
    pass


def _devices() -> tuple[str, int]:
    import torch

    if torch.cuda.is_available():
        return "GPU", torch.cuda.device_count()
    return "CPU core", os.cpu_count() or 1


def preflight(P: Params, stage: str) -> None:
    """Refuse, naming the parameter and the fix, what would fail later or train something else."""
    import torch

    c = P.compute
    kind, n = _devices()
    if c.num_processes < 1:
        raise LaunchError(f"compute.num_processes = {c.num_processes}: must be 1 or more")
    if c.num_processes > n:
        raise LaunchError(
            f"compute.num_processes = {c.num_processes}, but this machine has {n} {kind}(s); "
            f"set compute.num_processes to at most {n}"
        )
    if c.num_processes > 1 and not Path(c.accelerate_config).exists():
        raise LaunchError(
            f"compute.accelerate_config = {c.accelerate_config!r} does not exist; use one of "
            "configs/accelerate/ddp.yaml, zero2.yaml, zero3.yaml"
        )
    if c.mixed_precision != "no" and not torch.cuda.is_available():
        raise LaunchError(
            f"compute.mixed_precision = {c.mixed_precision!r} needs a GPU; set it to 'no' here"
        )
    if stage == "grpo":
        g = P.grpo
        if g.engine == "unsloth":
            if not torch.cuda.is_available():
                raise LaunchError(
                    "grpo.engine = 'unsloth' needs a CUDA GPU (Unsloth refuses to import without "
                    "one); set grpo.engine: trl to train with plain PEFT + TRL on this machine."
                )
            if importlib.util.find_spec("unsloth") is None:
                raise LaunchError(
                    "grpo.engine = 'unsloth' needs the GPU extra: pip install -c "
                    "requirements/gpu.txt -e '.[gpu]' (or set grpo.engine: trl)"
                )
            if "zero3" in Path(c.accelerate_config).name and c.num_processes > 1:
                raise LaunchError(
                    "grpo.engine = 'unsloth' does not support DeepSpeed ZeRO-3 "
                    f"(compute.accelerate_config = {c.accelerate_config!r}); use ddp.yaml or "
                    "zero2.yaml, or grpo.engine: trl"
                )
            if g.sft_init != "merge":
                raise LaunchError(
                    "grpo.engine = 'unsloth' with grpo.sft_init = 'continue' would regularise "
                    "toward the base model (Unsloth drops TRL's frozen copy of the SFT adapter); "
                    "set grpo.sft_init: merge"
                )
        if g.use_vllm and importlib.util.find_spec("vllm") is None:
            raise LaunchError(
                "grpo.use_vllm = true but vllm is not installed; install it (README, 'vLLM') "
                "or set grpo.use_vllm: false"
            )
    if stage == "evaluate" and P.evaluation.backend == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise LaunchError(
                "evaluation.backend = 'vllm' but vllm is not installed; install it (README, "
                "'vLLM') or set evaluation.backend: hf"
            )


def parse_stage_args(stage: str, argv: list[str] | None, require: tuple[str, ...],
                     runs: tuple[str, ...] = ()):  # fmt: skip
    """``python -m skinr1 <stage> --params FILE [--run RUN]``: the validated params (every
    section the stage needs complete), checked against this machine, and the parsed arguments."""
    import argparse

    from skinr1.config import load_params

    ap = argparse.ArgumentParser(prog=f"python -m skinr1 {stage}")
    ap.add_argument("--params", default="params.yaml")
    if runs:
        ap.add_argument("--run", choices=runs, required=True)
    args = ap.parse_args(argv)
    P = load_params(args.params, require=require)
    preflight(P, stage)
    return P, args


def activate_engine(engine: str) -> None:
    """Import Unsloth before trl, transformers and peft, as it requires: it patches them at
    import, and a trainer class bound earlier would stay plain TRL's."""
    if engine != "unsloth" or "unsloth" in sys.modules:
        return
    early = sorted(m for m in ("trl", "transformers", "peft") if m in sys.modules)
    if early:
        raise LaunchError(
            f"grpo.engine = 'unsloth' must be imported before {', '.join(early)}, which this "
            "process has already loaded; run the stage as `python -m skinr1 grpo` (notebook 04 "
            "does so by itself) or restart the kernel"
        )
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
    import unsloth  # noqa: F401


def in_kernel(P: Params, stage: str) -> bool:
    """One process with TRL runs in the caller's process; several processes, or Unsloth (which
    must be imported into a fresh interpreter), run as a subprocess."""
    return P.compute.num_processes == 1 and not (stage == "grpo" and P.grpo.engine == "unsloth")


def command(P: Params, stage: str, params_file: str, *extra: str) -> list[str]:
    """The command line of a stage: ``accelerate launch`` for several processes."""
    c = P.compute
    tail = ["-m", "skinr1", stage, "--params", str(params_file), *extra]
    if c.num_processes == 1:
        return [sys.executable, *tail]
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", c.accelerate_config,
        "--num_processes", str(c.num_processes), "--mixed_precision", c.mixed_precision, *tail,
    ]  # fmt: skip


def run_stage(P: Params, stage_module, params_file: str, *extra: str, log=None) -> None:
    """Run a stage (``skinr1.sft``, ``skinr1.grpo`` or ``skinr1.evaluation``, passed as the
    module, so that the notebook's imports name the code it runs) as params.yaml says: in this
    process, or as a subprocess whose output is streamed here (into the notebook cell) line by
    line; a non-zero exit fails the caller."""
    stage = stage_module.STAGE
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    preflight(P, stage)
    if in_kernel(P, stage):
        args = dict(zip(extra[::2], extra[1::2], strict=True))
        stage_module.run(P, **{k.lstrip("-"): v for k, v in args.items()})
        return
    cmd = command(P, stage, params_file, *extra)
    write = log or (lambda line: print(line, end="", flush=True))
    write(f"$ {' '.join(cmd)}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env) as proc:  # fmt: skip
        for line in proc.stdout:
            write(line)
    if proc.returncode != 0:
        raise LaunchError(f"{' '.join(cmd)} exited with status {proc.returncode}")
