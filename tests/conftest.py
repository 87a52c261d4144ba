"""Shared fixtures: a micro-scale project (params, demo data, tiny model) built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

# Micro scale: every stage does its real work through the real code path, in seconds.
MICRO = {
    "demo": {"scale": 0.1, "image_size": 64, "test_scale": 1.0},
    "base_model": {
        "tiny": {
            "vocab_size": 800,
            "hidden_size": 64,
            "num_layers": 1,
            "num_heads": 2,
            "num_kv_heads": 1,
            "intermediate_size": 128,
            "vision_depth": 1,
            "vision_hidden": 32,
            "vision_heads": 2,
            "image_size": 56,
        },
        "warmup_steps": 4,
        "warmup_batch_size": 4,
        "warmup_examples": 240,  # also the replay pool: sft.replay_fraction 0.25 draws 189 of it
    },  # fmt: skip
    "model": {"max_pixels": 3136, "min_pixels": 3136},
    "trajectories": {"per_case": {1: 1, 2: 1, 3: 1}},
    "lora": {"r": 4, "alpha": 8},
    "sft": {
        "max_steps": 2,
        "batch_size": 4,
        "save_steps": 1,
        "logging_steps": 1,
        "replay_fraction": 0.25,
    },  # fmt: skip
    "grpo": {
        "max_steps": 2,
        "prompts_per_step": 2,
        "num_generations": 2,
        "max_completion_length": 12,
        "save_steps": 1,
        "logging_steps": 1,
    },  # fmt: skip
    "evaluation": {"max_samples": 3, "batch_size": 8, "max_new_tokens": 8},
    "qualitative": {"n_cases": 2, "max_new_tokens": 8},
}


def micro_params(dest: Path) -> Path:
    """params.yaml as shipped, with the MICRO overrides, written to ``dest/params.yaml``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in MICRO.items():
        for k, v in values.items():
            if isinstance(v, dict) and isinstance(params[section].get(k), dict) and k != "per_case":
                params[section][k].update(v)
            else:
                params[section][k] = v
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def micro_project(tmp_path_factory) -> Path:
    """A project folder with micro params, the demo data and the warmed-up tiny base model."""
    from skinr1.__main__ import main

    root = tmp_path_factory.mktemp("project")
    params = micro_params(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["demo-data", "--params", str(params)]) == 0
        assert main(["base-model", "--params", str(params)]) == 0
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture()
def project_copy(micro_project, tmp_path) -> Path:
    """A private copy of the micro project (tests that train write into it)."""
    dest = tmp_path / "project"
    shutil.copytree(micro_project, dest, symlinks=True)
    return dest
