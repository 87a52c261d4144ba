"""The DVC pipeline as declared: stages, notebooks, params and the README's commands agree."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def _dvc() -> dict[str, dict]:
    """dvc.yaml's stages, each ``foreach`` stage expanded over its params.yaml mapping as DVC
    does (``name@key``, with ``${key}`` and ``${item}`` substituted)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    out = {}
    for name, stage in stages.items():
        if "foreach" not in stage:
            out[name] = stage
            continue
        var = stage["foreach"].removeprefix("${").removesuffix("}")
        text = yaml.safe_dump(stage["do"])
        for key, item in params[var].items():
            out[f"{name}@{key}"] = yaml.safe_load(
                text.replace("${key}", key).replace("${item}", item)
            )
    return out


def test_grpo_runs_are_stages_of_their_own_each_starting_from_its_folder():
    stages = _dvc()
    assert stages["grpo@sft_rl"]["deps"][-1] == "models/sft"
    assert stages["grpo@rl_without_sft"]["deps"][-1] == "models/base"
    assert "models/sft" not in stages["grpo@rl_without_sft"]["deps"]
    for run in ("sft_rl", "rl_without_sft"):
        assert "grpo_runs" not in stages[f"grpo@{run}"]["params"]  # dropping one leaves the other
        assert f"models/grpo/{run}" in stages[f"grpo@{run}"]["outs"]
    assert (
        "grpo_runs" in stages["evaluate"]["params"] and "models/grpo" in stages["evaluate"]["deps"]
    )


def test_every_stage_param_exists_in_params_yaml():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in _dvc().items():
        for key in stage.get("params", []):
            node = params
            for part in key.split("."):
                assert part in node, f"stage {name}: param {key} missing from params.yaml"
                node = node[part]


def test_notebook_stages_run_their_notebook_into_reports():
    stages = _dvc()
    nb_stages = {n: s for n, s in stages.items() if "papermill" in s["cmd"]}
    assert len(nb_stages) == 7  # 04 once per GRPO run
    for name, s in nb_stages.items():
        src, dst = s["cmd"].split()[3:5]
        assert (REPO / src).exists() and src in s["deps"], name
        run = name.partition("@")[2]
        assert dst == "reports/" + Path(src).stem + (f"_{run}" if run else "") + ".ipynb"
        assert not run or s["cmd"].endswith(f"-p run {run}")
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in s["outs"]]
        assert dst in outs and {"cache": False} in [
            o[dst] for o in s["outs"] if isinstance(o, dict) and dst in o
        ]
        assert "-p params_file params.yaml" in s["cmd"]


def test_every_source_dep_exists():
    produced = {
        next(iter(o)) if isinstance(o, dict) else o
        for s in _dvc().values()
        for o in s.get("outs", [])
    }
    for name, s in _dvc().items():
        for dep in s.get("deps", []):
            under = any(o.startswith(dep.rstrip("/") + "/") for o in produced)  # models/grpo
            assert (REPO / dep).exists() or dep in produced or under, (
                f"{name}: dep {dep} neither exists nor is produced"
            )


def test_readme_starts_with_the_two_commands_and_ci_calls_make_test():
    readme = (REPO / "README.md").read_text()
    head = readme[:2500]
    assert "make repro" in head and "make test" in head
    assert "make test" in (REPO / ".ci/run").read_text()


def _stage_sources(stage: dict) -> list[Path]:
    from skinr1.__main__ import COMMANDS
    from skinr1.provenance import module_file

    cmd = stage["cmd"].split()
    if cmd[0] == "papermill":
        return [REPO / cmd[3]]
    assert cmd[:3] == ["python", "-m", "skinr1"], stage["cmd"]
    return [REPO / "skinr1/__main__.py", module_file(COMMANDS[cmd[3]][0])]


def test_every_stage_lists_the_project_code_it_imports():
    """Each stage's skinr1 import closure (from its notebook or module, imports inside functions
    included) is covered by its dvc.yaml deps, so a code change reruns every stage it shapes."""
    from skinr1.provenance import closure

    for name, stage in _dvc().items():
        sources = _stage_sources(stage)
        files = set(closure(*sources)) | {s for s in sources if s.suffix == ".py"}
        deps = stage.get("deps", [])
        missing = []
        for f in sorted(files):
            rel = f.relative_to(REPO).as_posix()
            if rel == "skinr1/__init__.py":  # the version and warning filters only
                continue
            if not any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps):
                missing.append(rel)
        assert missing == [], f"dvc.yaml stage {name} does not list {missing}"


def test_import_closure_follows_imports_inside_functions(tmp_path):
    from skinr1.provenance import closure, code_fingerprint

    nb = tmp_path / "n.py"
    nb.write_text("def f():\n    from skinr1.grpo import run\n")
    names = {p.relative_to(REPO).as_posix() for p in closure(nb)}
    assert {
        "skinr1/grpo.py",
        "skinr1/training.py",
        "skinr1/config.py",
        "skinr1/rewards.py",
        "skinr1/curves.py",
    } <= names  # curves: imported inside training.attach_callbacks
    assert "skinr1/evaluation.py" not in names and "skinr1/sft.py" not in names
    assert code_fingerprint("skinr1.sft") != code_fingerprint("skinr1.grpo")


CORE = (
    "config",
    "model",
    "training",
    "launch",
    "sft",
    "grpo",
    "evaluation",
    "rewards",
    "mcq",
    "prompts",
    "curves",
    "model_card",
    "trajectories",
    "taxonomy",
    "ddx",
    "rules",
    "datasets",
)


@pytest.mark.parametrize("module", CORE)
def test_core_modules_never_reach_the_embedded_scaffolding(module):
    """Model loading, training and evaluation run the same at paper scale, where the tiny model
    and the demo renderer do not exist: none of them may import ``skinr1.embedded``."""
    from skinr1.provenance import closure, module_file

    reached = [p.relative_to(REPO).as_posix() for p in closure(module_file(f"skinr1.{module}"))]
    assert not [p for p in reached if p.startswith("skinr1/embedded/")], reached
