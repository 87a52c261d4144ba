"""params.yaml, validated: one typed model per section, so a misspelt, missing or mistyped key or
an unknown choice stops a stage at its start with a message naming the parameter, the file and
what is expected."""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ParamsError(ValueError):
    pass


class Section(BaseModel):
    """A section of params.yaml: every key required (params.yaml is the one record of a run, so
    nothing may come from a default hidden in code), no unknown key, values of the stated type."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TextbookCounts(Section):
    per_class: int  # textbook cases of each HAM10000 class
    per_neighbour: int  # of each of their DDx neighbours
    per_label: int  # of every other label of the RL datasets (their subtypes)


class DemoParams(Section):
    root: str
    scale: float
    image_size: int
    test_scale: float  # multiplies the held-out parts alone (1 = real proportions)
    textbook: TextbookCounts


class DataParams(Section):
    root: str
    textbook_root: str
    rl_datasets: list[str]
    ood_dataset: str
    check_images: bool
    max_train_questions: int  # 0 = all
    exclude_train_duplicates: bool  # drop test/OOD questions whose image a training split has


class BaseModelParams(Section):
    out: str
    tiny: dict[str, int]
    warmup_steps: int
    warmup_batch_size: int
    warmup_lr: float
    warmup_examples: int
    coarse_share: float  # warm-up examples naming a (noisy) top-level category
    coarse_noise: float  # share of those whose category is wrong
    coarse_prompt: Literal["vqa", "diagnosis"]  # their prompt: generic VQA or evaluation's own
    coarse_mixed: float  # share of their distractors drawn from every level of the taxonomy
    coarse_answer: Literal["letter", "name"]  # their answer: "B: name" or the option's name alone


class ModelParams(Section):
    base: str
    dtype: Literal["float32", "bfloat16", "float16"]
    trust_remote_code: bool
    attn_implementation: str | None
    max_pixels: int
    min_pixels: int
    prompt_style: Literal["paper", "compact"]


class ComputeParams(Section):
    num_processes: int  # > 1: `accelerate launch`, one process per GPU (or CPU process)
    accelerate_config: str
    mixed_precision: Literal["no", "bf16", "fp16"]

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _unquoted_no(cls, value: Any) -> Any:
        # `no` unquoted is false to YAML 1.1 (PyYAML), and `dvc exp run -S` writes it unquoted
        return "no" if value is False else value


class KnowledgeParams(Section):
    out_dir: str


class TrajectoryParams(Section):
    out: str
    types: list[int]
    per_case: dict[int, int]
    type3_image: Literal["differential", "primary"]
    comparator: Literal["template", "openai"]
    comparator_model: str
    comparator_base_url: str | None


class LoRAParams(Section):
    """The one LoRA recipe: SFT's adapter, RL without SFT's, and the fresh adapter GRPO trains on
    a merged SFT model all use it, so the runs Table 4 compares differ in training only."""

    r: int
    alpha: int
    dropout: float
    target_modules: list[str]  # [] = the stage's default (see training.lora_config)
    modules_to_save: list[str]


class SFTParams(Section):
    out: str
    replay_fraction: float
    mcq_share: float = Field(ge=0.0, lt=1.0)
    mcq_options: int = Field(ge=2, le=26)
    mcq_hide_label: float = Field(ge=0.0, le=1.0)
    trajectory_types: list[int]
    rationale: Literal["full", "compact", "findings"]
    learning_rate: float
    optim: str
    weight_decay: float
    warmup_ratio: float
    lr_scheduler: str
    epochs: float
    max_steps: int
    batch_size: int  # effective: per device x grad_accum x compute.num_processes
    grad_accum: int
    logging_steps: int
    save_steps: int


class GRPOParams(Section):
    out: str  # one folder per run: <out>/sft_rl, <out>/rl_without_sft
    engine: Literal["trl", "unsloth"]
    sft_init: Literal["continue", "merge"]
    max_seq_length: int
    use_vllm: bool
    vllm_mode: Literal["colocate", "server"]
    vllm_gpu_memory_utilization: float
    vllm_max_model_length: int | None
    vllm_server_host: str
    vllm_server_port: int
    rewards: list[Literal["format", "granularity", "malignancy", "consistency"]]
    granularity_norm: Literal["sampled", "path", "finest"]
    deep_question_repeat: int = Field(ge=1)  # 1 = Appendix A's question set
    n_options: int
    num_generations: int
    temperature: float
    beta: float
    loss_type: str
    learning_rate: float
    optim: str
    weight_decay: float
    warmup_ratio: float
    lr_scheduler: str
    prompts_per_step: int  # questions per optimiser step, all processes; x K completions
    grad_accum: int
    epochs: float
    max_steps: int
    max_completion_length: int
    merged_sampling: bool  # TRL's own generation: sample from the merged LoRA, dropout off
    logging_steps: int
    save_steps: int


class EvalParams(Section):
    out: str
    backend: Literal["hf", "vllm"]
    batch_size: int
    max_new_tokens: int
    max_samples: int  # per set; 0 = all
    sets: list[Literal["disease", "lesion", "ddx", "hierarchical", "ood"]]
    # sets whose answers get each option's probability at the answer position (hf backend)
    confidence_sets: list[Literal["disease", "lesion", "ddx", "hierarchical", "ood"]]
    # sets asked a second time with another question's options (skinr1.option_swap)
    swap_sets: list[Literal["disease", "ddx", "hierarchical", "ood"]]
    feature_truth: Literal["rules", "annotations"]  # what an image's true features are
    skin_types: str | None  # CSV image,fitzpatrick filling types the loaders lack; null = none


class QualitativeParams(Section):
    n_cases: int
    max_new_tokens: int


SECTIONS: dict[str, type[Section]] = {
    "demo": DemoParams,
    "data": DataParams,
    "base_model": BaseModelParams,
    "model": ModelParams,
    "compute": ComputeParams,
    "knowledge": KnowledgeParams,
    "trajectories": TrajectoryParams,
    "lora": LoRAParams,
    "sft": SFTParams,
    "grpo": GRPOParams,
    "evaluation": EvalParams,
    "qualitative": QualitativeParams,
}


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _section(source: str, name: str, raw: Any) -> Section:
    cls = SECTIONS[name]
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: section {name!r} must be a mapping")
    names = list(cls.model_fields)
    for key in raw:
        if key not in names:
            raise ParamsError(
                f"{source}: unknown parameter {name}.{key}{_suggest(key, names)}; "
                f"valid keys of {name!r}: {', '.join(names)}"
            )
    for key in names:
        if key not in raw:
            raise ParamsError(
                f"{source}: missing parameter {name}.{key}; add it to section {name!r} "
                "(params.yaml as shipped lists every key with its meaning)"
            )
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in (name, *err["loc"]))
        if err["type"] == "literal_error":
            allowed = err["ctx"]["expected"].replace(" or ", ", ")
            raise ParamsError(
                f"{source}: {key} = {err['input']!r} is not one of {allowed}"
            ) from None
        raise ParamsError(
            f"{source}: {key} = {err['input']!r}: {err['msg'].lower()} "
            f"(expected {cls.model_fields[err['loc'][0]].annotation})"
        ) from None


# The GRPO runs (Table 4): SFT then GRPO (Skin-R1), and GRPO from the base model (the ablation).
GRPO_RUNS = ("sft_rl", "rl_without_sft")


@dataclass
class Params:
    seed: int
    sections: dict[str, Any]
    grpo_runs: dict[str, str]  # run -> the folder it starts from; dvc.yaml's foreach reads it
    source: str = "params.yaml"

    def __getattr__(self, name: str):
        try:
            return self.__dict__["sections"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str):
        if name in ("seed", "grpo_runs"):
            return getattr(self, name)
        return self.sections[name].model_dump()

    def grpo_adapter(self, run: str) -> Path:
        """Where GRPO run ``run`` saves its adapter: ``grpo.out/<run>``."""
        return Path(self.sections["grpo"].out) / run

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
    """Read and validate the whole of params.yaml, every section complete; ``require`` names the
    sections the calling stage reads, whose absence is reported first."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(
            f"{path}: parameter file not found; pass an existing file (e.g. -p params_file "
            "params.yaml) or run from the repository root"
        )
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if "seed" not in raw or not isinstance(raw["seed"], int) or isinstance(raw["seed"], bool):
        raise ParamsError(
            f"{path}: missing parameter seed (an integer that drives every random choice)"
        )
    top = ["seed", "grpo_runs", *SECTIONS]
    for key in raw:
        if key not in top:
            raise ParamsError(
                f"{path}: unknown section {key!r}{_suggest(key, top)}; "
                f"valid sections: {', '.join(top)}"
            )
    for name in (*require, *top):
        if name not in raw:
            raise ParamsError(f"{path}: missing section {name!r} (params.yaml as shipped has it)")
    sections = {name: _section(str(path), name, raw[name]) for name in SECTIONS}
    runs = _grpo_runs(str(path), raw["grpo_runs"], sections)
    return Params(seed=raw["seed"], sections=sections, grpo_runs=runs, source=str(path))


def _grpo_runs(source: str, raw: Any, sections: dict[str, Any]) -> dict[str, str]:
    """``grpo_runs``: which GRPO runs the pipeline trains, each with the folder it starts from
    (DVC's dependency of that run), which must be the one the stage reads."""
    if not isinstance(raw, dict) or "sft_rl" not in raw:
        raise ParamsError(
            f"{source}: grpo_runs must map run names to their starting folder and include "
            f"sft_rl, e.g. {{sft_rl: {sections['sft'].out}, rl_without_sft: "
            f"{sections['base_model'].out}}}"
        )
    starts = {"sft_rl": (sections["sft"].out,),
              "rl_without_sft": (sections["base_model"].out, sections["model"].base)}  # fmt: skip
    for run, start in raw.items():
        if run not in GRPO_RUNS:
            raise ParamsError(
                f"{source}: unknown run grpo_runs.{run}{_suggest(str(run), list(GRPO_RUNS))}; "
                f"runs: {', '.join(GRPO_RUNS)}"
            )
        if start not in starts[run]:
            raise ParamsError(
                f"{source}: grpo_runs.{run} = {start!r}, but that run starts from "
                f"{' or '.join(map(repr, starts[run]))}; write that folder (DVC watches it)"
            )
    return {run: raw[run] for run in GRPO_RUNS if run in raw}


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
