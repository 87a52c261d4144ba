"""What SFT and GRPO share: the optimiser and precision settings, batch arithmetic over
processes, resuming, and rank-safe saving of adapters."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from skinr1.config import ComputeParams, LoRAParams, ModelParams

# The language model's linear layers and the vision-language merger, as the authors' code does;
# the ViT blocks stay frozen. A regex, because the vision MLPs share the names gate/up/down_proj.
LANGUAGE_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
DEFAULT_TARGETS = LANGUAGE_TARGETS + r"|.*visual\.merger\.mlp\.(0|2)"

# AdamW's moments and clipping, written out so that no trainer class (TRL's or Unsloth's) can
# substitute its own defaults: both engines then train alike.
ADAM = {"adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8, "max_grad_norm": 1.0}


def lora_targets(lora: LoRAParams, *, language_only: bool = False) -> str | list[str]:
    """``lora.target_modules``, or the default: language layers and merger, or the language
    layers alone for engines that cannot apply LoRA to the vision side (vLLM, Unsloth)."""
    if lora.target_modules:
        t = lora.target_modules
        return t[0] if len(t) == 1 else list(t)
    return LANGUAGE_TARGETS if language_only else DEFAULT_TARGETS


def lora_config(lora: LoRAParams, *, language_only: bool = False):
    """PEFT's LoraConfig from the ``lora`` params (the one recipe every adapter uses)."""
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora_targets(lora, language_only=language_only),
        modules_to_save=list(lora.modules_to_save) or None, task_type="CAUSAL_LM",
    )  # fmt: skip


def score_labelled_tokens_only() -> None:
    """Make TRL's fused LM head project only the labelled positions on the CPU, as it does on GPUs.

    TRL 1.x's fused head scores every position of the batch (prompt and image tokens included)
    and zeroes the unlabelled ones afterwards on devices without Triton, to keep tile shapes fixed
    for compilers such as Neuron's. On a CPU nothing is compiled, so those rows are pure cost: on
    the tiny model the head was over half of an SFT step. Which rows are projected is decided by
    ``trl.trainer.utils._use_triton`` alone; the kernel's own choice (Triton or torch tiles) reads
    the kernel module's function and is untouched. The log-probabilities, losses and gradients are
    the same (``tests/test_training.py`` compares them). A no-op where TRL lacks the hook.
    """
    import trl.trainer.utils as trl_utils

    current = getattr(trl_utils, "_use_triton", None)
    if current is None or getattr(current, "labelled_only", False):
        return

    def compact(device) -> bool:
        return device.type == "cpu" or current(device)

    compact.labelled_only = True
    trl_utils._use_triton = compact


def state():
    """The process group this stage runs in (one process in a notebook kernel, N under
    ``accelerate launch``). Built with ``cpu`` when there is no GPU, so gloo serves the CPU test."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def per_device(total: int, grad_accum: int, num_processes: int, param: str) -> int:
    """Split an effective batch over processes and accumulation steps, or say why it cannot be."""
    denom = grad_accum * num_processes
    if total < denom or total % denom:
        raise ValueError(
            f"{param} = {total} is not divisible by grad_accum x processes = {grad_accum} x "
            f"{num_processes}; choose a multiple of {denom}"
        )
    return total // denom


def check_world(compute: ComputeParams) -> int:
    """The number of processes actually running, which must be the one params.yaml records."""
    n = state().num_processes
    if n != compute.num_processes:
        raise ValueError(
            f"compute.num_processes = {compute.num_processes}, but this run has {n} processes; "
            f"launch with --num_processes {compute.num_processes} or change the parameter"
        )
    return n


def trainer_args(cfg, model: ModelParams, compute: ComputeParams, *, run_dir: Path, seed: int,
                 per_device_batch: int) -> dict:  # fmt: skip
    """Keyword arguments both SFTConfig and GRPOConfig take, every optimiser setting explicit."""
    import torch

    on_gpu = torch.cuda.is_available()
    if compute.mixed_precision != "no" and not on_gpu:
        raise ValueError(
            f"compute.mixed_precision = {compute.mixed_precision!r} needs a GPU; set it to 'no' here"
        )
    return dict(
        output_dir=str(run_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=per_device_batch, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, optim=cfg.optim, weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio, **ADAM,
        logging_steps=cfg.logging_steps, save_steps=cfg.save_steps, save_total_limit=2,
        report_to=[], seed=seed, data_seed=seed, bf16=compute.mixed_precision == "bf16",
        fp16=compute.mixed_precision == "fp16", use_cpu=not on_gpu, dataloader_num_workers=0,
        # always explicit: TRL's configs default to True, which only costs time on a CPU
        gradient_checkpointing=on_gpu,
        disable_tqdm=not sys.stderr.isatty(),  # bars on a terminal, not in reports or logs
    )  # fmt: skip


def pin_defaults(args, cfg) -> None:
    """Unsloth's config classes carry fields of their own (warmup_ratio 0.1, ...): overwrite
    any that exist so they cannot differ from plain TRL's."""
    if hasattr(args, "warmup_ratio"):
        args.warmup_ratio = cfg.warmup_ratio
    if hasattr(args, "weight_decay"):
        args.weight_decay = cfg.weight_decay


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest complete checkpoint of an interrupted identical run, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(run_dir)) if Path(run_dir).is_dir() else None


# Beside every adapter: the trainer class that made it, the base it applies to, adapters merged
# into that base before it was trained (evaluation merges them first), and per-step seconds.
RUN_FILE = "skinr1.json"


def attach_callbacks(trainer, curves_dir: Path | None):
    """The stage's callbacks: the step timer, DVCLive curves in ``curves_dir``, and, off a
    terminal, no printed log dict per logging step (an executed report would fill with them;
    the curves and the adapter's log_history.json hold every value). Returns the timer."""
    from transformers.trainer_callback import PrinterCallback

    from skinr1.curves import live_callback

    timer = step_timer()
    trainer.add_callback(timer)
    if curves_dir is not None:
        trainer.add_callback(live_callback(curves_dir))
    if not sys.stderr.isatty():
        trainer.remove_callback(PrinterCallback)
    return timer


def step_timer():
    """A callback recording each optimiser step's wall time (for reported speed, never asserted)."""
    import time

    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_step_begin(self, args, state, control, **kw):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.seconds.append(round(time.perf_counter() - self._t, 4))

    return StepTimer()


def run_record(trainer, timer, *, base: str, merged: list[str], reference: str | None = None):
    """The content of RUN_FILE for one trained adapter."""
    cls = type(trainer)
    return {"trainer": f"{cls.__module__}.{cls.__qualname__}", "base": base, "merged": merged,
            "reference": reference, "step_seconds": timer.seconds}  # fmt: skip


def save_adapter(trainer, out_dir: Path, extra: dict[str, object] | None = None) -> None:
    """Write the adapter through ``trainer.save_model`` (which gathers ZeRO-3 shards and writes
    on the main process only), then move it into place on the main process, so the adapter
    appears only once complete. ``extra`` files (name -> JSON-able) go beside it."""
    st = state()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if st.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    st.wait_for_everyone()
    trainer.save_model(str(tmp))
    if st.is_main_process:
        # The pickled arguments are neither needed to load the adapter nor byte-stable.
        (tmp / "training_args.bin").unlink(missing_ok=True)
        (tmp / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
        for name, payload in (extra or {}).items():
            (tmp / name).write_text(json.dumps(payload, indent=1))
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    st.wait_for_everyone()
