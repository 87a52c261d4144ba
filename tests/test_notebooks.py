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


@pytest.mark.slow
def test_all_notebooks_execute_in_order_at_micro_scale(project_copy):
    import papermill as pm

    cwd = os.getcwd()
    os.chdir(project_copy)
    (project_copy / "reports").mkdir(exist_ok=True)
    try:
        for nb in NOTEBOOKS:
            pm.execute_notebook(str(nb), str(project_copy / "reports" / nb.name), kernel_name="python3",
                                parameters={"params_file": str(project_copy / "params.yaml")},
                                progress_bar=False)  # fmt: skip
    finally:
        os.chdir(cwd)
    p = project_copy
    knowledge = json.loads((p / "metrics/knowledge.json").read_text())
    assert knowledge["nodes"] > 100 and knowledge["rules"] == knowledge["nodes"]
    assert (p / "data/skinrationale/dataset").is_dir()
    assert (p / "plots/sft_loss.csv").read_text().startswith("step,loss")
    assert (
        (p / "plots/grpo_rewards.csv")
        .read_text()
        .startswith("run,step,reward,format,granularity,malignancy")
    )
    metrics = json.loads((p / "metrics/metrics.json").read_text())
    assert set(metrics) == {"disease", "lesion", "ddx", "hierarchical", "ood"}
    assert set(metrics["disease"]) == {"base", "sft", "rl_without_sft", "sft_rl"}
    assert "avg_f1" in metrics["lesion"]["sft_rl"]
    records = [
        json.loads(line) for line in (p / "data/eval_records.jsonl").read_text().splitlines()
    ]
    pairs = Counter((r["model"], r["set"]) for r in records)
    # evaluation.max_samples = 3 questions per set, answered by each of the four models
    assert set(pairs) == {(m, s) for m in metrics["disease"] for s in metrics}
    assert all(1 <= n <= 3 for n in pairs.values())
    assert all(r["strict"] in (None, *"ABCDEFGHIJ") for r in records)
    assert (p / "reports/06_qualitative_cases.ipynb").exists()


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


def test_supplement_renders_the_six_reports_with_an_ordered_index(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("supplement", REPO / "tools" / "supplement.py")
    supplement = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(supplement)
    paths = supplement.render(REPO / "reports", tmp_path)
    assert [p.name for p in paths] == ["index.html", *(f"{n.stem}.html" for n in NOTEBOOKS)]
    index = (tmp_path / "index.html").read_text()
    links = [index.index(f'href="{n.stem}.html"') for n in NOTEBOOKS]
    assert links == sorted(links) and "01 · Taxonomy tree" in index
    assert "Supervised fine-tuning" in (tmp_path / "03_sft.html").read_text()
