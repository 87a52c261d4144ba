"""How stages are launched and what stops them at their start: devices, engines, vLLM; the
Unsloth import order; GRPOConfig as params.yaml says (paper batch semantics, vLLM)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skinr1.config import load_params
from skinr1.launch import LaunchError, command, in_kernel, preflight

REPO = Path(__file__).resolve().parent.parent


def _params(tmp_path, **sections):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, values in sections.items():
        raw[name].update(values)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_params(p)


@pytest.fixture()
def gpus(monkeypatch):
    """A machine with two CUDA GPUs, as far as the checks can tell."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def _installed(monkeypatch, *names):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n in names else real(n, *a)
    )


def test_more_processes_than_devices_names_the_parameter(tmp_path, gpus):
    P = _params(tmp_path, compute={"num_processes": 3})
    with pytest.raises(LaunchError, match=r"compute.num_processes = 3, but this machine has 2 GPU"):
        preflight(P, "sft")


def test_mixed_precision_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    P = _params(tmp_path, compute={"mixed_precision": "bf16"})
    with pytest.raises(LaunchError, match=r"compute.mixed_precision = 'bf16' needs a GPU"):
        preflight(P, "sft")


def test_unsloth_without_the_extra_with_zero3_and_with_continue(tmp_path, gpus, monkeypatch):
    _installed(monkeypatch)  # nothing extra
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "unsloth" else real(n, *a)
    )
    P = _params(tmp_path, grpo={"engine": "unsloth", "sft_init": "merge"})
    with pytest.raises(LaunchError, match=r"needs the GPU extra: pip install -c requirements/gpu"):
        preflight(P, "grpo")
    _installed(monkeypatch, "unsloth")
    zero3 = str(REPO / "configs/accelerate/zero3.yaml")
    P = _params(tmp_path, grpo={"engine": "unsloth", "sft_init": "merge"},
                compute={"num_processes": 2, "accelerate_config": zero3})  # fmt: skip
    with pytest.raises(LaunchError, match=r"does not support DeepSpeed ZeRO-3.*ddp.yaml or zero2"):
        preflight(P, "grpo")
    P = _params(tmp_path, grpo={"engine": "unsloth", "sft_init": "continue"})
    with pytest.raises(LaunchError, match=r"regularise toward the base model.*sft_init: merge"):
        preflight(P, "grpo")
    P = _params(tmp_path, grpo={"engine": "unsloth", "sft_init": "merge"})
    preflight(P, "grpo")  # a complete set-up passes
    assert not in_kernel(P, "grpo")  # Unsloth always gets a fresh interpreter


def test_vllm_asked_for_but_missing(tmp_path, monkeypatch):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    P = _params(tmp_path, grpo={"use_vllm": True})
    with pytest.raises(LaunchError, match=r"grpo.use_vllm = true but vllm is not installed"):
        preflight(P, "grpo")
    P = _params(tmp_path, evaluation={"backend": "vllm"})
    with pytest.raises(LaunchError, match=r"evaluation.backend = 'vllm' but vllm is not"):
        preflight(P, "evaluate")


def test_missing_accelerate_config(tmp_path, gpus):
    P = _params(tmp_path, compute={"num_processes": 2, "accelerate_config": "nope.yaml"})
    with pytest.raises(
        LaunchError, match=r"compute.accelerate_config = 'nope.yaml' does not exist"
    ):
        preflight(P, "sft")


def test_several_processes_launch_accelerate_with_the_shipped_config(tmp_path):
    P = _params(tmp_path, compute={"num_processes": 4, "mixed_precision": "bf16"})
    assert command(P, "sft", "params.yaml") == [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file",
        "configs/accelerate/ddp.yaml", "--num_processes", "4", "--mixed_precision", "bf16",
        "-m", "skinr1", "sft", "--params", "params.yaml",
    ]  # fmt: skip
    for name in ("ddp", "zero2", "zero3"):
        cfg = yaml.safe_load((REPO / f"configs/accelerate/{name}.yaml").read_text())
        assert cfg["distributed_type"] == ("MULTI_GPU" if name == "ddp" else "DEEPSPEED")
        if name != "ddp":
            assert cfg["deepspeed_config"]["zero_stage"] == int(name[-1])


def test_unsloth_is_imported_before_trl_transformers_and_peft(tmp_path):
    """A stand-in ``unsloth`` records which of trl/transformers/peft were already loaded when the
    GRPO stage imported it, through the real entry point (the CUDA check is satisfied by a
    stand-in ``sitecustomize``)."""
    stub = tmp_path / "stub"
    (stub / "unsloth").mkdir(parents=True)
    marker = tmp_path / "loaded_before.txt"
    (stub / "unsloth" / "__init__.py").write_text(
        "import os, sys\n"
        "early = [m for m in ('trl', 'transformers', 'peft') if m in sys.modules]\n"
        f"open({str(marker)!r}, 'w').write(','.join(early) or '-')\n"
        "raise SystemExit(7)\n"
    )
    (stub / "sitecustomize.py").write_text(
        "import torch\ntorch.cuda.is_available = lambda: True\ntorch.cuda.device_count = lambda: 1\n"
    )
    P = _params(tmp_path, grpo={"engine": "unsloth", "sft_init": "merge"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub), str(REPO)])}
    proc = subprocess.run([sys.executable, "-m", "skinr1", "grpo", "--params", P.source,
                           "--run", "rl_without_sft"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 7, proc.stderr[-2000:]
    assert marker.read_text() == "-"  # nothing of trl, transformers or peft before unsloth


def test_unsloth_after_trl_in_one_process_is_refused():
    from skinr1.launch import activate_engine

    code = "import trl, skinr1.launch as l; l.activate_engine('unsloth')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "must be imported before trl, which this process has already loaded" in proc.stderr
    activate_engine("trl")  # the TRL engine needs nothing


def test_grpo_config_has_paper_batch_semantics_and_vllm_settings(tmp_path):
    from trl import GRPOConfig

    from skinr1.grpo import grpo_kwargs

    P = _params(tmp_path, grpo={"prompts_per_step": 16, "num_generations": 4, "grad_accum": 2,
                                "use_vllm": True, "vllm_mode": "server",
                                "vllm_server_host": "10.0.0.5", "vllm_server_port": 8123,
                                "vllm_gpu_memory_utilization": 0.45,
                                "vllm_max_model_length": 4096})  # fmt: skip
    kw = grpo_kwargs(P.grpo, P.model, P.compute, run_dir=tmp_path / "r", seed=1, world=2)
    args = GRPOConfig(**kw)
    # 16 prompts x K=4 = 64 completions per step = 16 per device x 2 accumulation x 2 processes
    assert args.per_device_train_batch_size == 16 and args.gradient_accumulation_steps == 2
    assert args.num_generations == 4 and args.beta == 0.04 and args.loss_type == "grpo"
    assert args.use_vllm and args.vllm_mode == "server"
    assert (args.vllm_server_host, args.vllm_server_port) == ("10.0.0.5", 8123)
    assert args.vllm_gpu_memory_utilization == 0.45 and args.vllm_max_model_length == 4096
    assert (args.optim, args.weight_decay, args.lr_scheduler_type) == (
        "adamw_torch_fused", 0.0, "linear",
    )  # fmt: skip
    assert (args.adam_beta1, args.adam_beta2, args.max_grad_norm) == (0.9, 0.999, 1.0)
    three = _params(tmp_path, grpo={"prompts_per_step": 3}).grpo
    with pytest.raises(ValueError, match=r"grpo.prompts_per_step x grpo.num_generations = 12"):
        grpo_kwargs(three, P.model, P.compute, run_dir=tmp_path, seed=1, world=5)


def test_sft_effective_batch_is_split_over_processes():
    from skinr1.training import per_device

    assert per_device(16, 1, 2, "sft.batch_size") == 8
    assert per_device(16, 2, 2, "sft.batch_size") == 4
    with pytest.raises(ValueError, match=r"sft.batch_size = 16 is not divisible by .* 3 x 2"):
        per_device(16, 3, 2, "sft.batch_size")


def test_vllm_and_unsloth_adapt_the_language_layers_only(tmp_path):
    from skinr1.grpo import language_only
    from skinr1.training import DEFAULT_TARGETS, LANGUAGE_TARGETS, lora_config

    def targets(**grpo):
        P = _params(tmp_path, grpo=grpo)
        return lora_config(P.lora, language_only=language_only(P.grpo)).target_modules

    assert "visual" in DEFAULT_TARGETS and "visual" not in LANGUAGE_TARGETS
    assert targets() == DEFAULT_TARGETS  # SFT's targets: language layers and merger
    assert targets(use_vllm=True) == LANGUAGE_TARGETS
    assert targets(engine="unsloth") == LANGUAGE_TARGETS
    P = _params(tmp_path, lora={"target_modules": ["q_proj", "v_proj"]})
    assert lora_config(P.lora, language_only=True).target_modules == {"q_proj", "v_proj"}
