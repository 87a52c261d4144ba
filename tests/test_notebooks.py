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
