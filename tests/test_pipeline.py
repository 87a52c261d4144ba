"""The DVC pipeline as declared: stages, notebooks, params and the README's commands agree."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _dvc():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


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
    assert len(nb_stages) == 6
    for name, s in nb_stages.items():
        src, dst = s["cmd"].split()[3:5]
        assert (REPO / src).exists() and src in s["deps"], name
        assert dst == "reports/" + Path(src).name
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
            assert (REPO / dep).exists() or dep in produced, (
                f"{name}: dep {dep} neither exists nor is produced"
            )


def test_readme_starts_with_the_two_commands_and_ci_calls_make_test():
    readme = (REPO / "README.md").read_text()
    head = readme[:2500]
    assert "make repro" in head and "make test" in head
    assert "make test" in (REPO / ".ci/run").read_text()
