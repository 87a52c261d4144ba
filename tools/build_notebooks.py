"""Writes notebooks/0N_*.ipynb from the cell lists below (outputs empty).

The notebooks are the source users open in JupyterLab; this script only keeps their cells in one
reviewable place. Run: python tools/build_notebooks.py
"""

from pathlib import Path

import nbformat as nbf

HEADER = """import warnings
warnings.filterwarnings("ignore")
from pathlib import Path
import json
import pandas as pd
import matplotlib.pyplot as plt
from skinr1.config import enter_project, load_params
PARAMS = Path(params_file).resolve()  # the file named, wherever the kernel starts
ROOT = enter_project(params_file)  # paths in params.yaml are relative to its folder"""

NOTEBOOKS = {
    "01_taxonomy_ddx": [
        (
            "md",
            """# 01 · Taxonomy tree and differential-diagnosis graph

Skin-R1 stands on two pieces of knowledge (§3.1): a **hierarchical diagnosis tree** $\\mathcal{T}_{tax}$, used for hierarchical completion, the granularity reward $R_{gran}$ (Eq. 7), the multiple-choice options and the hierarchical stress set; and a **differential-diagnosis graph** $\\mathcal{G}_{DDx}$, used for Type 2/3 trajectories (Algorithm 4) and the DDx stress set. The authors did not release theirs. Ours is data in `skinr1/knowledge/*.yaml`: see `docs/knowledge-base.md`. Loading validates it: one root, no cycles, no orphan DDx node, every dataset label mapped or declared out of scope, every diagnosis with a rule and a malignancy, and unique synonyms.""",
        ),
        ("params", 'params_file = "../params.yaml"'),
        (
            "code",
            HEADER
            + """
from skinr1.taxonomy import load_taxonomy
from skinr1.ddx import load_ddx
from skinr1.rules import load_rules
from skinr1 import figures
from skinr1.coverage import coverage_table, knowledge_statistics
P = load_params(PARAMS, require=("knowledge",))
tax = load_taxonomy(); ddx = load_ddx(tax); rules = load_rules(tax)   # validation runs here
out = Path(P.knowledge.out_dir); out.mkdir(parents=True, exist_ok=True)
stats = knowledge_statistics(tax, ddx, rules)
pd.Series(stats, name="value").to_frame()""",
        ),
        (
            "md",
            "## The tree\nA radial layout, cut at depth 3 so it stays readable: a marker's size counts the descendants hidden below it, and its colour is the node's malignancy (benign, malignant, precancerous in situ; the convention is in `docs/knowledge-base.md`).",
        ),
        (
            "code",
            """fig, ax = plt.subplots(figsize=(13, 13))
figures.draw_taxonomy(tax, max_depth=3, ax=ax)
fig.savefig(out / "taxonomy.png", dpi=110, bbox_inches="tight"); plt.show()""",
        ),
        ("md", "Each top-level family with its depth and leaves:"),
        (
            "code",
            """pd.DataFrame([{"family": top, "malignancy": tax.malignancy(top), "nodes": 1 + len(tax.descendants(top)),
               "depth": max([tax.depth(d) for d in tax.descendants(top)] or [1]),
               "leaves": sum(not tax.children(d) for d in [top, *tax.descendants(top)])}
              for top in tax.children(tax.root)]).set_index("family")""",
        ),
        (
            "md",
            "## The DDx graph\nEdges join clinically confusable diagnoses; each carries the features that tell them apart (a sample below).",
        ),
        (
            "code",
            """fig, ax = plt.subplots(figsize=(14, 11))
figures.draw_ddx(ddx, tax, ax=ax, seed=P.seed)
fig.savefig(out / "ddx_graph.png", dpi=110, bbox_inches="tight"); plt.show()
pd.DataFrame([{"a": sorted(e)[0], "b": sorted(e)[1], "discriminating features": t}
              for e, t in list(ddx.edges.items())[:12]])""",
        ),
        (
            "md",
            "## Coverage of the datasets\nEvery raw label of every dataset, the node it maps to, that node's depth and malignancy, and how many demo samples carry it (read through the real loaders from `data.root`).",
        ),
        (
            "code",
            """cov = coverage_table(tax, rules, ddx, data_root=Path(P.data.root), seed=P.seed)
summary = cov.groupby("dataset").agg(labels=("raw label", "size"), mapped=("node", lambda s: s.notna().sum()),
                                     max_depth=("depth", "max"), samples=("samples", "sum"))
summary""",
        ),
        (
            "code",
            """pd.set_option("display.max_rows", 300)
cov""",
        ),
        (
            "code",
            """stats["coverage"] = summary.reset_index().to_dict(orient="records")
Path("metrics").mkdir(exist_ok=True)
Path("metrics/knowledge.json").write_text(json.dumps({k: v for k, v in stats.items() if k != "coverage"}, indent=1))
print(json.dumps({k: v for k, v in stats.items() if k != "coverage"}, indent=1))""",
        ),
    ],
    "02_trajectory_synthesis": [
        (
            "md",
            """# 02 · Trajectory synthesis: SkinRationale

From textbook exemplars $(I_i, r_i, d_i)$ we synthesise three kinds of reasoning trajectories (Appendix B):
**Type 1** (Algorithm 1) maps image to diagnosis with the rule as rationale; **Type 2** (Algorithm 2) adds a differential diagnosis found by Algorithm 4 and keeps the primary diagnosis; **Type 3** (Algorithm 3) starts from a wrong primary hypothesis and revises it to the differential. Each final diagnosis is completed with its taxonomy path and malignancy (hierarchical completion).

The comparator that writes the differential reasoning $\\rho$ is a deterministic template over the two rules' structured features and the DDx edge's discriminating features (`trajectories.comparator: template`); `openai` calls an LLM as the authors did, with the key read from `OPENAI_API_KEY`. **Deviation:** Algorithm 3 as printed pairs the primary case's image with the revised diagnosis; we pair the revision with an image of the final diagnosis, so every trajectory's final diagnosis is the true label of its image (`docs/deviations.md`).""",
        ),
        ("params", 'params_file = "../params.yaml"'),
        (
            "code",
            HEADER
            + """
from skinr1.taxonomy import load_taxonomy
from skinr1.ddx import load_ddx
from skinr1.rules import load_rules
from skinr1.datasets.textbook import load_cases
from skinr1.trajectories import OpenAIComparator, TemplateComparator, save_skinrationale, synthesize
P = load_params(PARAMS, require=("trajectories",))
cfg = P.trajectories
tax = load_taxonomy(); ddx = load_ddx(tax); rules = load_rules(tax)
cases = load_cases(Path(P.data.textbook_root), tax)
print(f"{len(cases)} textbook cases over {len({c.diagnosis for c in cases})} diagnoses")""",
        ),
        (
            "code",
            """comparator = (TemplateComparator(tax, ddx, rules) if cfg.comparator == "template"
              else OpenAIComparator(cfg.comparator_model, base_url=cfg.comparator_base_url))
trajectories, report = synthesize(cases, tax, ddx, rules, comparator, seed=P.seed, types=tuple(cfg.types),
                                  per_case={int(k): int(v) for k, v in cfg.per_case.items()},
                                  type3_image=cfg.type3_image)
save_skinrationale(trajectories, cfg.out, report)
mismatch = [t.id for t in trajectories if t.final != t.image_label]
assert cfg.type3_image == "primary" or not mismatch, mismatch
print(f"{len(trajectories)} trajectories written to {cfg.out}; final diagnosis = image label for all")""",
        ),
        (
            "md",
            "## Counts\nPer type, and how the differential was found: directly in the DDx graph, through Algorithm 4's fallbacks, or by the random fallback of Algorithms 2-3 when Algorithm 4 returns None.",
        ),
        (
            "code",
            """counts = pd.Series(report["counts"], name="trajectories").to_frame()
fallbacks = pd.DataFrame(report["fallbacks"]).T.fillna(0).astype(int)
display(counts); display(fallbacks)
if report.get("skip_counts"): display(pd.Series(report["skip_counts"], name="skipped"))""",
        ),
        (
            "code",
            """df = pd.DataFrame([t.to_dict() for t in trajectories])
ax = df.groupby(["final", "type"]).size().unstack(fill_value=0).plot.barh(stacked=True, figsize=(8, 6))
ax.set_xlabel("trajectories"); ax.set_title("Trajectories per final diagnosis and type"); plt.show()""",
        ),
        ("md", "## One example per type"),
        (
            "code",
            """from PIL import Image
for ty in sorted(df["type"].unique()):
    t = next(t for t in trajectories if t.type == ty)
    fig, ax = plt.subplots(figsize=(2.2, 2.2)); ax.imshow(Image.open(t.image)); ax.set_axis_off()
    ax.set_title(f"Type {ty}: {t.final}", fontsize=8); plt.show()
    print(t.response, "\\n")""",
        ),
        (
            "code",
            """Path("metrics").mkdir(exist_ok=True)
Path("metrics/trajectories.json").write_text(json.dumps(
    {"trajectories": len(trajectories), **{f"type{k}": v for k, v in report["counts"].items()},
     "cases": len(cases)}, indent=1))""",
        ),
    ],
    "03_sft": [
        (
            "md",
            """# 03 · Supervised fine-tuning on SkinRationale

TRL's `SFTTrainer` with a PEFT LoRA (§3.2.1, Eq. 2): the loss covers the trajectory tokens given the image and the Appendix D prompt. Adapter on the language model's linear layers and the vision-language merger; r, α, dropout, learning rate, epochs and batch size come from `params.yaml` (paper: r=64, α=32, dropout 0.1, lr 3e-5, 4 epochs, batch 16). Training resumes from the last checkpoint of an identical run.""",
        ),
        ("params", 'params_file = "../params.yaml"'),
        (
            "code",
            HEADER
            + """
from skinr1.launch import run_stage
P = load_params(PARAMS, require=("model", "sft", "compute"))
print(f"base model {P.model.base}; {P.compute.num_processes} process(es); effective batch {P.sft.batch_size}")""",
        ),
        (
            "md",
            "With `compute.num_processes: 1` the training runs in this kernel; with more, the cell runs `accelerate launch -m skinr1 sft` and streams its log here. Either way the adapter lands in `sft.out` and the curve in `plots/sft_loss.csv`.",
        ),
        (
            "code",
            """run_stage(P, "sft", PARAMS)
loss = pd.read_csv("plots/sft_loss.csv")
print(f"adapter saved to {P.sft.out}; loss {loss.loss.iloc[0]:.3f} -> {loss.loss.iloc[-1]:.3f}")""",
        ),
        (
            "code",
            """from skinr1 import figures
figures.draw_curves(loss, x="step", ys=["loss"], title="SFT loss"); plt.show()""",
        ),
    ],
    "04_grpo": [
        (
            "md",
            """# 04 · Reinforcement learning with GRPO

The policy continues the SFT adapter and is trained with GRPO (§3.2.2, Eq. 4) on multiple-choice questions built from the **training splits** of the six datasets (Appendix A): options sampled from the dataset's label tree and the global tree, each with its granularity value. The reward is $R_{format}+R_{gran}+R_{malignancy}$ (Eq. 5-8), K completions per question at temperature 1.0, KL to the SFT policy with β > 0 and TRL's `loss_type="grpo"`. A second run starts from the base model with a fresh LoRA: the **RL without SFT** ablation (Table 4, Fig. 2). Checkpoints are kept and an interrupted run resumes.""",
        ),
        ("params", 'params_file = "../params.yaml"'),
        (
            "code",
            HEADER
            + """
from skinr1.taxonomy import load_taxonomy
from skinr1.datasets.selection import exclusion_table, load_configured
from skinr1.grpo import questions, reward_curve
from skinr1.launch import run_stage
P = load_params(PARAMS, require=("model", "data", "grpo", "compute"))
results = load_configured(P.data.root, P.data.rl_datasets, load_taxonomy(), seed=P.seed, check_images=P.data.check_images)
exclusion_table(results)""",
        ),
        (
            "code",
            """ds, qreport = questions(P)
g = P.grpo
print(f"{len(ds)} RL questions; skipped {qreport['skipped']}; {g.prompts_per_step} questions x K={g.num_generations} "
      f"completions per step on {P.compute.num_processes} process(es); engine {g.engine}, SFT init {g.sft_init}")
q = ds[0]; print(q["question"]); print("answer:", q["answer"], "| granularity values:", q["scores"])""",
        ),
        (
            "md",
            "Each run goes through `skinr1.launch.run_stage`: in this kernel with one process and TRL; otherwise as `[accelerate launch] -m skinr1 grpo --run ...` in a fresh interpreter (Unsloth must be imported before TRL), with its log streamed here. The adapters and their log histories are read back from disk.",
        ),
        (
            "code",
            """runs = {"sft_rl": P.grpo.out}
if P.grpo.run_without_sft:
    runs["rl_without_sft"] = P.grpo.out_without_sft
curves = []
for name, out in runs.items():
    run_stage(P, "grpo", PARAMS, "--run", name)
    history = [h for h in json.loads((Path(out) / "log_history.json").read_text()) if "reward" in h]
    curves += reward_curve(history, name, P.grpo.rewards)
    print(f"{name}: adapter saved to {out}")
curves = pd.DataFrame(curves)
Path("plots").mkdir(exist_ok=True); curves.to_csv("plots/grpo_rewards.csv", index=False)""",
        ),
        (
            "md",
            "## Reward curves (Fig. 2)\nTotal reward per logged step for SFT+RL and RL without SFT, and each reward term separately.",
        ),
        (
            "code",
            """from skinr1 import figures
fig, axes = plt.subplots(1, 1 + len(P.grpo.rewards), figsize=(5 * (1 + len(P.grpo.rewards)), 3.5))
figures.draw_curves(curves, x="step", ys=["reward"], by="run", ax=axes[0], title="total reward", smooth=3)
for ax, name in zip(axes[1:], P.grpo.rewards):
    figures.draw_curves(curves, x="step", ys=[name], by="run", ax=ax, title=name, smooth=3)
plt.tight_layout(); plt.show()
curves.groupby("run")[["reward", *P.grpo.rewards]].agg(["first", "last", "max"]).round(3)""",
        ),
    ],
    "05_evaluation": [
        (
            "md",
            """# 05 · Evaluation

Greedy, batched answers (Appendix C) from four models on the **held-out test splits**: the base model, SFT, RL without SFT, and SFT+RL (Skin-R1). Question sets: in-distribution disease diagnosis (Table 2), lesion condition (A benign / B malignant / C precancerous in situ, Table 3, with macro-F1), the DDx and hierarchical stress sets (§4.3, Fig. 3), and OmniMedVQA as the OOD set. An answer counts only under **strict extraction**: a single option named inside `<final diagnosis>`; anything else is invalid (the paper reports ~30% invalid for the base model).""",
        ),
        ("params", 'params_file = "../params.yaml"'),
        (
            "code",
            HEADER
            + """
from skinr1.evaluation import MODEL_LABELS, question_sets, summaries_of, table
from skinr1.launch import run_stage
P = load_params(PARAMS, require=("model", "data", "evaluation", "compute"))
E = P.evaluation
sets = question_sets(P)
pd.Series({k: len(v) for k, v in sets.items()}, name="questions").to_frame()""",
        ),
        (
            "md",
            "Every model answers every set, through `skinr1.launch.run_stage` (in this kernel with one process; with more, `accelerate launch -m skinr1 evaluate` splits the questions over the GPUs). `evaluation.backend: vllm` generates with vLLM instead. Every answer is in `data/eval_records.jsonl`.",
        ),
        (
            "code",
            """run_stage(P, "evaluate", PARAMS)
records = [json.loads(line) for line in Path("data/eval_records.jsonl").read_text().splitlines()]
summaries = summaries_of(records)""",
        ),
        ("md", "## Disease diagnosis, in-distribution (Table 2, left; Table 4)"),
        ("code", """t2 = table(summaries["disease"]); t2.round(3)"""),
        ("md", "## Lesion condition (Table 3; Table 5): accuracy and macro-F1"),
        (
            "code",
            """acc, f1 = table(summaries["lesion"], metric="acc"), table(summaries["lesion"], metric="f1")
pd.concat({"Acc": acc, "F1": f1}, axis=1).swaplevel(axis=1).sort_index(axis=1).round(3)""",
        ),
        ("md", "## OOD: OmniMedVQA (Table 2, right)"),
        (
            "code",
            '''table(summaries["ood"]).round(3) if "ood" in summaries else "ood not evaluated"''',
        ),
        ("md", "## DDx and hierarchical stress sets (Fig. 3)"),
        (
            "code",
            """from skinr1 import figures
stress = pd.DataFrame({k: {MODEL_LABELS[m]: s["pooled_acc"] for m, s in summaries[k].items()}
                       for k in ("ddx", "hierarchical") if k in summaries})
figures.draw_bars(stress, title="Accuracy on the DDx and hierarchical test sets"); plt.show(); stress.round(3)""",
        ),
        (
            "md",
            "## Invalid answers under strict extraction, and the answer distribution\nThe paper finds the base model fails the format in ~30% of cases and SFT in ~2%; a model biased to one letter shows here too.",
        ),
        (
            "code",
            """inv = pd.DataFrame({k: {MODEL_LABELS[m]: s["invalid_rate"] for m, s in v.items()} for k, v in summaries.items()})
display(inv.round(3))
pd.DataFrame({MODEL_LABELS[m]: summaries["disease"][m]["answer_distribution"] for m in summaries["disease"]}).fillna(0).astype(int)""",
        ),
        (
            "code",
            """fig, axes = plt.subplots(1, 2, figsize=(14, 4))
figures.draw_bars(t2, ax=axes[0], title="Disease diagnosis accuracy (in-distribution)")
figures.draw_bars(acc, ax=axes[1], title="Lesion-condition accuracy"); plt.tight_layout(); plt.show()""",
        ),
        (
            "code",
            """metrics = json.loads(Path(E.out, "metrics.json").read_text())
gain = metrics["disease"]["sft_rl"]["avg_acc"] - metrics["disease"]["base"]["avg_acc"] if "sft_rl" in metrics["disease"] else float("nan")
print(f"SFT+RL vs base, disease-diagnosis accuracy (avg over datasets): {gain:+.3f}")""",
        ),
    ],
    "06_qualitative_cases": [
        (
            "md",
            """# 06 · Qualitative cases (Appendix E)

A handful of held-out test images with the ground truth, and the open-ended answers of the base model and of Skin-R1 (SFT+RL) to Appendix E's prompt, which asks for the features, the diagnosis and the lesion condition.""",
        ),
        ("params", 'params_file = "../params.yaml"'),
        (
            "code",
            HEADER
            + """
import random
from PIL import Image
from skinr1.taxonomy import load_taxonomy
from skinr1.datasets.selection import load_configured, split_samples
from skinr1.evaluation import generate, load_eval_model
from skinr1.model import load_processor
from skinr1.prompts import template
P = load_params(PARAMS, require=("model", "qualitative"))
tax = load_taxonomy()
results = load_configured(P.data.root, P.data.rl_datasets, tax, seed=P.seed, check_images=P.data.check_images)
test = split_samples(results, "test")
rng = random.Random(P.seed)
by_node = {}
for s in test: by_node.setdefault(s.node, []).append(s)
nodes = rng.sample(sorted(by_node), min(P.qualitative.n_cases, len(by_node)))
cases = [rng.choice(by_node[n]) for n in nodes]   # distinct diagnoses, like the paper's cases""",
        ),
        (
            "code",
            """processor = load_processor(P.model.base, max_pixels=P.model.max_pixels, min_pixels=P.model.min_pixels,
                           trust_remote_code=P.model.trust_remote_code)
images = [Image.open(s.image) for s in cases]
answers = {}
for name, adapter in {"base": None, "Skin-R1": P.grpo.out}.items():
    model = load_eval_model(P.model, adapter)
    answers[name] = generate(model, processor, [template("qualitative", P.model.prompt_style)] * len(cases), images, batch_size=8,
                             max_new_tokens=P.qualitative.max_new_tokens, prompt_style=P.model.prompt_style)""",
        ),
        (
            "code",
            """for i, s in enumerate(cases):
    fig, ax = plt.subplots(figsize=(2.4, 2.4)); ax.imshow(images[i]); ax.set_axis_off(); plt.show()
    print(f"Case {i + 1} ({s.dataset}, {s.modality}). Ground truth: {s.node}, {s.malignancy}")
    for name, resp in answers.items():
        print(f"  Response from {name}: {resp[i].strip()}")
    print()""",
        ),
    ],
}


def build(out_dir: Path) -> None:
    for name, cells in NOTEBOOKS.items():
        nb = nbf.v4.new_notebook()
        nb.metadata = {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
        for kind, src in cells:
            if kind == "md":
                nb.cells.append(nbf.v4.new_markdown_cell(src))
            else:
                cell = nbf.v4.new_code_cell(src)
                if kind == "params":
                    cell.metadata["tags"] = ["parameters"]
                nb.cells.append(cell)
        for i, c in enumerate(nb.cells):
            c["id"] = f"{name[:2]}-{i:02d}"
        nbf.write(nb, out_dir / f"{name}.ipynb")


if __name__ == "__main__":
    build(Path(__file__).resolve().parent.parent / "notebooks")
