"""Every notebook runs under papermill at micro scale, and source notebooks carry no outputs."""

import json
import os
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))


def test_the_six_numbered_notebooks_exist_with_a_parameters_cell():
    assert [n.name[:3] for n in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_"]
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, nb.name


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_source_notebooks_carry_no_outputs(nb):
    for cell in json.loads(nb.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, nb.name


def _dvc(repo: Path, *args: str) -> str:
    import subprocess
    import sys

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _git(repo: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                   check=True, capture_output=True)  # fmt: skip


@pytest.mark.slow
def test_dvc_repro_runs_the_notebooks_and_an_experiment_at_micro_scale(tmp_path):
    """As a user runs it: `dvc repro` on the shipped dvc.yaml (micro params), then one
    experiment with `dvc exp run -S`, compared by `dvc exp show`; curves by `dvc plots show`."""
    import shutil

    from conftest import micro_params

    repo = tmp_path / "repo"
    repo.mkdir()
    for item in ("dvc.yaml", "notebooks", "skinr1", "configs"):
        copy = shutil.copytree if (REPO / item).is_dir() else shutil.copy
        copy(REPO / item, repo / item)
    shutil.rmtree(repo / "skinr1.egg-info", ignore_errors=True)
    (repo / "reports").mkdir()  # committed in the repository, with the executed notebooks
    micro_params(repo)
    (repo / ".gitignore").write_text("__pycache__/\nmodels/checkpoints/\n")
    _git(repo, "init", "-q")
    _dvc(repo, "init", "-q")
    # DVCLive 3.49 fails in a repository without commits (scm.get_rev() before its own check)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "code")
    _dvc(repo, "repro")
    assert "up to date" in _dvc(repo, "status")
    p = repo
    knowledge = json.loads((p / "metrics/knowledge.json").read_text())
    assert knowledge["nodes"] > 100 and knowledge["rules"] == knowledge["nodes"]
    assert (p / "data/skinrationale/dataset").is_dir()
    metrics = json.loads((p / "metrics/metrics.json").read_text())
    # the option swap of the disease set: measured per model, or skipped with its reason (3
    # questions may share one label), never silently absent
    trust = json.loads((p / "metrics/trust.json").read_text())
    swap, skipped = trust["option_swap"], trust["option_swap_skipped"]
    assert set(swap) | set(skipped) == {"disease"} and not set(swap) & set(skipped)
    if "disease" in swap:
        assert {m: d["n"] for m, d in swap["disease"].items()} == {
            m: n for (m, s), n in Counter((r["model"], r["set"]) for r in [
                json.loads(x) for x in (p / "data/eval_records.jsonl").read_text().splitlines()
            ]).items() if s == "disease"}  # fmt: skip
    else:
        assert "at least two labels" in skipped["disease"]
    assert set(metrics) == {"disease", "lesion", "ddx", "hierarchical", "ood"}
    models = {"base", "sft", "rl_without_sft", "sft_rl"}
    assert set(metrics["disease"]) == models and "avg_f1" in metrics["lesion"]["sft_rl"]
    records = [
        json.loads(line) for line in (p / "data/eval_records.jsonl").read_text().splitlines()
    ]
    pairs = Counter((r["model"], r["set"]) for r in records)
    # evaluation.max_samples = 3 questions per set, answered by each of the four models
    assert set(pairs) == {(m, s) for m in models for s in metrics}
    assert all(1 <= n <= 3 for n in pairs.values())
    assert all(r["strict"] in (None, *"ABCDEFGHIJ") for r in records)
    reports = sorted(x.name for x in (p / "reports").glob("*.ipynb"))
    assert reports == ["01_taxonomy_ddx.ipynb", "02_trajectory_synthesis.ipynb", "03_sft.ipynb",
                       "04_grpo_rl_without_sft.ipynb", "04_grpo_sft_rl.ipynb",
                       "05_evaluation.ipynb", "06_qualitative_cases.ipynb"]  # fmt: skip
    for name in reports:  # no progress bars or per-step log dicts in the supplement
        text = json.dumps(json.loads((p / "reports" / name).read_text())["cells"])
        assert "it/s]" not in text and "s/it]" not in text and "{'loss':" not in text, name
    # model cards beside the adapters (PEFT's front matter) and with metrics after evaluation
    card = (p / "models/grpo/sft_rl/README.md").read_text()
    assert card.startswith("---\nbase_model: models/base\n") and "library_name: peft" in card
    assert "grpo:" in card and "multiple-choice questions:" in card
    assert "| disease_acc |" in (p / "metrics/cards/sft_rl.md").read_text()

    # `dvc metrics show`: one row per model, a few columns
    shown = json.loads(_dvc(repo, "metrics", "show", "--json"))
    rows = shown[""]["data"]
    assert set(rows) == {f"metrics/headline/{m}.json" for m in models}
    assert set(rows["metrics/headline/sft_rl.json"]["data"]) >= {"disease_acc", "lesion_f1",
                                                                "ood_acc", "disease_invalid"}  # fmt: skip
    # `dvc plots show` draws the DVCLive curves dvc.yaml declares
    plots = json.loads(_dvc(repo, "plots", "show", "--json"))
    drawn = {k for k, v in plots["data"].items() if v and v[0]["content"]["data"]["values"]}
    assert {"SFT loss", "GRPO total reward (Fig. 2)", "GRPO KL to the reference"} <= drawn

    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "baseline")
    _dvc(repo, "exp", "run", "-S", "grpo.max_steps=3")
    exps = json.loads(_dvc(repo, "exp", "show", "--json"))
    found = {}

    def walk(node):
        if isinstance(node, dict):
            data = node.get("data") if isinstance(node.get("data"), dict) else None
            if data and "params" in data:
                steps = data["params"]["params.yaml"]["data"]["grpo"]["max_steps"]
                found[steps] = data.get("metrics", {})
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(exps)
    assert set(found) >= {2, 3}, found.keys()
    assert "metrics/headline/sft_rl.json" in found[3]
    curve = (repo / "plots/grpo/sft_rl/plots/metrics/reward.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in curve] == ["step", "1", "2", "3"]


def test_notebook_code_is_ruff_clean():
    """The notebooks are the source users edit; they are linted and formatted like the package."""
    import subprocess
    import sys

    ruff = Path(sys.executable).with_name("ruff")
    for args in (["check"], ["format", "--check"]):
        proc = subprocess.run([str(ruff), *args, "notebooks"], cwd=REPO, capture_output=True,
                              text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_params_file_named_is_the_one_used(project_copy):
    """A second parameter file beside params.yaml, with another seed and output folder: the
    notebook uses it, shows it, and writes where it says."""
    import papermill as pm
    import yaml

    raw = yaml.safe_load((project_copy / "params.yaml").read_text())
    raw["seed"] = 99
    raw["trajectories"]["out"] = "data/skinrationale-99"
    other = project_copy / "other.yaml"
    other.write_text(yaml.safe_dump(raw, sort_keys=False))
    nb = REPO / "notebooks" / "02_trajectory_synthesis.ipynb"
    out = project_copy / "02.ipynb"
    pm.execute_notebook(str(nb), str(out), kernel_name="python3", progress_bar=False,
                        parameters={"params_file": str(other)}, cwd=str(project_copy / "data"))  # fmt: skip
    assert (project_copy / "data/skinrationale-99/dataset").is_dir()
    assert not (project_copy / "data/skinrationale").exists()
    cell = next(
        c for c in json.loads(out.read_text())["cells"] if "P.rows(" in "".join(c["source"])
    )
    table = "".join(cell["outputs"][0]["data"]["text/plain"])
    lines = {ln.split()[0]: ln.split()[-1] for ln in table.splitlines()[2:] if ln.strip()}
    assert lines["seed"] == "99" and lines["trajectories.out"] == "data/skinrationale-99"
    assert "params file" in table  # the path itself is cut to the column width; rows() has it:
    from skinr1.config import load_params

    assert load_params(other).rows("trajectories")[0] == {"parameter": "params file",
                                                           "value": str(other.resolve())}  # fmt: skip


def test_supplement_renders_the_reports_with_an_ordered_index(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("supplement", REPO / "tools" / "supplement.py")
    supplement = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(supplement)
    paths = supplement.render(REPO / "reports", tmp_path)
    stems = ["01_taxonomy_ddx", "02_trajectory_synthesis", "03_sft", "04_grpo_sft_rl",
             "04_grpo_rl_without_sft", "05_evaluation", "06_qualitative_cases"]  # fmt: skip
    assert [p.name for p in paths] == ["index.html", *(f"{s}.html" for s in stems)]
    index = (tmp_path / "index.html").read_text()
    links = [index.index(f'href="{s}.html"') for s in stems]
    assert links == sorted(links) and "01 · Taxonomy tree" in index
    assert "GRPO (run sft_rl)" in index and "GRPO (run rl_without_sft)" in index
    assert "Supervised fine-tuning" in (tmp_path / "03_sft.html").read_text()
