"""The lock files: every pin exact, every project requirement locked at a version it allows."""

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent


def _lock(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements" / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pkg, sep, version = line.partition("==")
            assert sep, f"{name}: {line!r} is not an exact pin"
            pins[canonicalize_name(pkg)] = version.strip()
    return pins


@pytest.mark.parametrize("lock,extras", [("gpu.txt", ("gpu", "dev")), ("cpu.txt", ("dev",))])
def test_every_project_requirement_is_locked_at_an_allowed_version(lock, extras):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"]]
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    pins = _lock(lock)
    for spec in map(Requirement, reqs):
        name = canonicalize_name(spec.name)
        assert name in pins, f"{lock} does not pin {spec.name}"
        assert spec.specifier.contains(pins[name], prereleases=True), (lock, spec, pins[name])


def test_the_gpu_lock_pins_the_whole_gpu_stack():
    pins = _lock("gpu.txt")
    stack = ["torch", "torchvision", "xformers", "bitsandbytes", "triton", "unsloth",
             "unsloth-zoo", "trl", "transformers", "datasets", "peft", "accelerate", "deepspeed"]  # fmt: skip
    assert [p for p in stack if p not in pins] == []
    assert (pins["trl"], pins["transformers"], pins["unsloth"]) == ("1.15.0", "5.17.0", "2026.10.9")
    assert "vllm" not in pins  # vLLM has its own environment (numpy < 2.4 via mistral-common)
    assert _lock("vllm.txt")["vllm"] == "0.31.0"
