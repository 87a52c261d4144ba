"""params.yaml, validated: one dataclass per section, so a misspelt or missing key stops a stage
at its start with a message naming the parameter and the fix."""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


class ParamsError(ValueError):
    pass


@dataclass
class DemoParams:
    root: str = "data/demo"
    scale: float = 1.0
    image_size: int = 128


@dataclass
class DataParams:
    root: str = "data/demo"
    textbook_root: str = "data/demo"
    rl_datasets: list = field(default_factory=lambda: ["HAM10000"])
    ood_dataset: str = "OmniMedVQA"
    check_images: bool = True
    max_train_questions: int = 0  # 0 = all


@dataclass
class BaseModelParams:
    out: str = "models/base"
    tiny: dict = field(default_factory=dict)
    warmup_steps: int = 400
    warmup_batch_size: int = 8
    warmup_lr: float = 1e-3
    warmup_examples: int = 1600


@dataclass
class ModelParams:
    base: str = "models/base"
    dtype: str = "float32"
    trust_remote_code: bool = False
    attn_implementation: str | None = None
    max_pixels: int = 12544
    min_pixels: int = 12544
    prompt_style: str = "paper"


@dataclass
class ComputeParams:
    num_processes: int = 1  # > 1: `accelerate launch`, one process per GPU (or CPU process)
    accelerate_config: str = "configs/accelerate/ddp.yaml"
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16"


@dataclass
class KnowledgeParams:
    out_dir: str = "reports/knowledge"


@dataclass
class TrajectoryParams:
    out: str = "data/skinrationale"
    types: list = field(default_factory=lambda: [1, 2, 3])
    per_case: dict = field(default_factory=lambda: {1: 1, 2: 1, 3: 1})
    type3_image: str = "differential"
    comparator: str = "template"
    comparator_model: str = "gpt-4o-mini"
    comparator_base_url: str | None = None


@dataclass
class SFTParams:
    out: str = "models/sft"
    lora_r: int = 64
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    target_modules: list = field(default_factory=list)
    modules_to_save: list = field(default_factory=list)
    replay_fraction: float = 0.0
    trajectory_types: list = field(default_factory=lambda: [1, 2, 3])
    rationale: str = "full"  # "findings": the findings sentence and the diagnosis only
    learning_rate: float = 3e-5
    optim: str = "adamw_torch_fused"
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    lr_scheduler: str = "cosine"
    epochs: float = 4
    max_steps: int = -1
    batch_size: int = 16  # effective: per device x grad_accum x compute.num_processes
    grad_accum: int = 1
    logging_steps: int = 5
    save_steps: int = 100


@dataclass
class GRPOParams:
    out: str = "models/grpo"
    out_without_sft: str = "models/grpo_without_sft"
    run_without_sft: bool = True
    engine: str = "trl"  # "trl" (PEFT + TRL, CPU or GPU) or "unsloth" (GPU only)
    sft_init: str = "continue"  # "continue" the SFT adapter, or "merge" it and add a fresh LoRA
    max_seq_length: int = 2048  # Unsloth's loader: prompt + completion tokens
    use_vllm: bool = False
    vllm_mode: str = "colocate"
    vllm_gpu_memory_utilization: float = 0.3
    vllm_max_model_length: int | None = None
    vllm_server_host: str = "0.0.0.0"
    vllm_server_port: int = 8000
    rewards: list = field(default_factory=lambda: ["format", "granularity", "malignancy"])
    granularity_norm: str = "sampled"
    n_options: int = 4
    num_generations: int = 4
    temperature: float = 1.0
    beta: float = 0.04
    loss_type: str = "grpo"
    learning_rate: float = 1e-5
    optim: str = "adamw_torch_fused"
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    lr_scheduler: str = "linear"
    prompts_per_step: int = 16  # questions per optimiser step, all processes; x K completions
    grad_accum: int = 1
    epochs: float = 1
    max_steps: int = -1
    max_completion_length: int = 1024
    lora_r: int = 64
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    target_modules: list = field(default_factory=list)
    modules_to_save: list = field(default_factory=list)
    logging_steps: int = 1
    save_steps: int = 100


@dataclass
class EvalParams:
    out: str = "metrics"
    backend: str = "hf"  # "hf" (transformers generate, batched) or "vllm"
    batch_size: int = 16
    max_new_tokens: int = 256
    max_samples: int = 0  # per set; 0 = all
    sets: list = field(default_factory=lambda: ["disease", "lesion", "ddx", "hierarchical", "ood"])


@dataclass
class QualitativeParams:
    n_cases: int = 4
    max_new_tokens: int = 256


SECTIONS: dict[str, type] = {
    "demo": DemoParams,
    "data": DataParams,
    "base_model": BaseModelParams,
    "model": ModelParams,
    "compute": ComputeParams,
    "knowledge": KnowledgeParams,
    "trajectories": TrajectoryParams,
    "sft": SFTParams,
    "grpo": GRPOParams,
    "evaluation": EvalParams,
    "qualitative": QualitativeParams,
}

CHOICES = {
    ("trajectories", "type3_image"): ("differential", "primary"),
    ("trajectories", "comparator"): ("template", "openai"),
    ("grpo", "engine"): ("trl", "unsloth"),
    ("grpo", "granularity_norm"): ("sampled", "path"),
    ("grpo", "vllm_mode"): ("colocate", "server"),
    ("grpo", "sft_init"): ("continue", "merge"),
    ("evaluation", "backend"): ("hf", "vllm"),
    ("compute", "mixed_precision"): ("no", "bf16", "fp16"),
    ("model", "dtype"): ("float32", "bfloat16", "float16"),
    ("model", "prompt_style"): ("paper", "compact"),
}


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _section(source: str, name: str, raw: Any, *, complete: bool):
    cls = SECTIONS[name]
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: section {name!r} must be a mapping")
    names = [f.name for f in fields(cls)]
    for key in raw:
        if key not in names:
            raise ParamsError(
                f"{source}: unknown parameter {name}.{key}{_suggest(key, names)}; "
                f"valid keys of {name!r}: {', '.join(names)}"
            )
    for f in fields(cls):
        # A stage's own sections must spell out every key: params.yaml is the one record of a
        # run, so nothing it uses may come from a default hidden in code.
        required = complete or (f.default is MISSING and f.default_factory is MISSING)
        if f.name not in raw and required:
            raise ParamsError(
                f"{source}: missing parameter {name}.{f.name}; add it to section {name!r} "
                "(params.yaml as shipped lists every key with its meaning)"
            )
    for (sec, key), allowed in CHOICES.items():
        if sec == name and key in raw and raw[key] not in allowed:
            raise ParamsError(
                f"{source}: {name}.{key} = {raw[key]!r} is not one of {', '.join(map(repr, allowed))}"
            )
    return cls(**raw)


@dataclass
class Params:
    seed: int
    sections: dict[str, Any]
    source: str = "params.yaml"

    def __getattr__(self, name: str):
        try:
            return self.__dict__["sections"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str):
        if name == "seed":
            return self.seed
        return self.sections[name].__dict__

    def rows(self, *sections: str) -> list[dict]:
        """The resolved values of ``sections`` as (parameter, value) rows, the file first, so
        a report shows exactly what its stage ran with."""
        out = [{"parameter": "params file", "value": str(Path(self.source).resolve())},
               {"parameter": "seed", "value": self.seed}]  # fmt: skip
        for name in sections:
            out += [{"parameter": f"{name}.{k}", "value": repr(v) if isinstance(v, list | dict)
                     else v} for k, v in self[name].items()]  # fmt: skip
        return out


def load_params(
    path: str | os.PathLike = "params.yaml", *, require: tuple[str, ...] = ()
) -> Params:
    """Read and validate params.yaml; ``require`` names the sections a stage cannot run without."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: parameter file not found (run from the repository root)")
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if "seed" not in raw or not isinstance(raw["seed"], int):
        raise ParamsError(
            f"{path}: missing parameter seed (an integer that drives every random choice)"
        )
    for key in raw:
        if key != "seed" and key not in SECTIONS:
            raise ParamsError(
                f"{path}: unknown section {key!r}{_suggest(key, list(SECTIONS))}; "
                f"valid sections: seed, {', '.join(SECTIONS)}"
            )
    for name in require:
        if name not in raw:
            raise ParamsError(f"{path}: missing section {name!r}, which this stage needs")
    sections = {
        name: _section(str(path), name, raw.get(name, {}), complete=name in require)
        for name in SECTIONS
    }
    return Params(seed=raw["seed"], sections=sections, source=str(path))


def require_path(value: str, param: str, hint: str) -> Path:
    """A path that must already exist, or an error naming the parameter and how to fix it."""
    p = Path(value)
    if not p.exists():
        raise FileNotFoundError(f"{param} = {value!r} does not exist. {hint}")
    return p


def checkpoint_dir(stage: str, *payload: Any, root: str = "models/checkpoints") -> Path:
    """Where a stage keeps resumable checkpoints: outside its DVC outputs (which DVC clears
    before a rerun) and keyed by a hash of everything that shapes the run, so an interrupted run
    resumes while a changed one starts afresh."""
    import hashlib
    import json

    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return Path(root) / f"{stage}-{hashlib.sha256(blob).hexdigest()[:12]}"


def enter_project(params_file: str | os.PathLike) -> Path:
    """Make the folder of params.yaml the working directory (paths in it are relative to it),
    so a notebook runs the same from JupyterLab (cwd notebooks/) and from DVC (cwd the root)."""
    root = Path(params_file).resolve().parent
    if not (root / "params.yaml").exists() and not Path(params_file).exists():
        raise ParamsError(f"params_file = {params_file!r} not found")
    os.chdir(root)
    if not sys.stderr.isatty():
        quiet_progress()
    return root


def quiet_progress() -> None:
    """No progress bars in an executed report (papermill's kernel has no terminal): the Hugging
    Face libraries read these switches at import, and are told again if already imported."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def fingerprint(name_or_path: str | None) -> str:
    """Identity of a model or adapter for checkpoint keys: a hub id is its name; a local folder is
    hashed by its files' names and sizes and the first and last MiB of each, so a rebuilt base
    model or a retrained adapter never resumes another run's checkpoints (and a 15 GB checkpoint
    is fingerprinted in milliseconds)."""
    import hashlib

    if name_or_path is None:
        return "none"
    p = Path(name_or_path)
    if not p.exists():
        return str(name_or_path)
    h = hashlib.sha256()
    # Trainer checkpoints saved *inside* the folder are not part of its identity; a folder that
    # is itself a checkpoint (checkpoint-100) is hashed like any other.
    files = (x for x in p.rglob("*") if x.is_file() and not any(
        part.startswith("checkpoint-") for part in x.relative_to(p).parts[:-1]))  # fmt: skip
    for f in sorted(files):
        size = f.stat().st_size
        h.update(f"{f.relative_to(p)}:{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()[:16]
