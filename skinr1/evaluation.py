"""Evaluation: greedy batched answers to the question sets, strict extraction, and the metrics of
Tables 2-5 (accuracy per dataset and on average, lesion-condition macro-F1, invalid-answer rate)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import partial

from skinr1 import model_card, option_swap
from skinr1.config import ModelParams, Params, checkpoint_dir, fingerprint
from skinr1.intervals import cell
from skinr1.prompts import template

MODELS = ("base", "sft", "rl_without_sft", "sft_rl")
MODEL_LABELS = {
    "base": "Base (no fine-tuning)",
    "sft": "SFT",
    "rl_without_sft": "RL without SFT",
    "sft_rl": "Skin-R1 (SFT + RL)",
}

STAGE = "evaluate"  # python -m skinr1 evaluate


def prompt_for(row: dict, style: str = "paper") -> str:
    """Appendix D's evaluation prompt (or its compact variant) for a question row of any kind."""
    kind = row["kind"]
    if kind == "lesion":
        return template("lesion", style)
    if kind == "ood":
        return template("ood", style).format(question=row["question"])
    letters = "/".join(row["letters"])
    return template("diagnosis", style).format(question=row["question"], letters=letters)


def adapter_chain(adapter: str | None) -> list[str]:
    """The adapters to merge, in order, for a model trained as ``adapter``: a GRPO adapter
    trained on a merged SFT model (``sft_init: merge``) names the SFT adapter in skinr1.json."""
    import json
    from pathlib import Path

    from skinr1.training import RUN_FILE

    if adapter is None:
        return []
    record = Path(adapter) / RUN_FILE
    merged = json.loads(record.read_text())["merged"] if record.exists() else []
    return [*merged, adapter]


def load_eval_model(model: ModelParams, adapter: str | None = None):
    """Base model with the adapter (chain) merged in, on this process's GPU when there is one
    (merged weights run faster under greedy decoding)."""
    import torch

    from skinr1.model import load_merged

    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else None
    return load_merged(model, adapter_chain(adapter), device_map=device).eval()


def generate(model, processor, prompts: list[str], images: list, *, batch_size: int,
             max_new_tokens: int, desc: str = "generate", prompt_style: str = "paper") -> list[str]:  # fmt: skip
    """Greedy completions, batched with left padding; returns the decoded new text only."""
    import torch
    from tqdm.auto import tqdm

    from skinr1.prompts import user_message

    tok = processor.tokenizer
    tok.padding_side = "left"
    device = next(model.parameters()).device
    out: list[str] = []
    # disable=None: a bar on a terminal, none in an executed report or a log file
    for i in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False, disable=None):
        texts = [processor.apply_chat_template(user_message(p, prompt_style), add_generation_prompt=True,
                                               tokenize=False) for p in prompts[i : i + batch_size]]  # fmt: skip
        imgs = [im.convert("RGB") for im in images[i : i + batch_size]]
        enc = processor(text=texts, images=imgs, return_tensors="pt", padding=True).to(device)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)  # fmt: skip
        new = gen[:, enc["input_ids"].shape[1] :]
        out += tok.batch_decode(new, skip_special_tokens=True)
    return out


class VLLMGenerator:
    """Greedy completions from vLLM for one model: the base with its adapter chain merged and
    written to ``model_dir`` (vLLM loads checkpoints from disk), the same prompts as ``generate``."""

    def __init__(self, model_dir: str, *, max_model_len: int | None, gpu_memory_utilization: float,
                 trust_remote_code: bool = False):  # fmt: skip
        from vllm import LLM

        self.llm = LLM(model=model_dir, limit_mm_per_prompt={"image": 1},
                       max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                       trust_remote_code=trust_remote_code)  # fmt: skip

    def __call__(self, processor, prompts: list[str], images: list, *, max_new_tokens: int,
                 prompt_style: str = "paper", **_) -> list[str]:  # fmt: skip
        from vllm import SamplingParams

        from skinr1.prompts import user_message

        inputs = [
            {"prompt": processor.apply_chat_template(user_message(p, prompt_style),
                                                     add_generation_prompt=True, tokenize=False),
             "multi_modal_data": {"image": im.convert("RGB")}}
            for p, im in zip(prompts, images, strict=True)
        ]  # fmt: skip
        outs = self.llm.generate(inputs, SamplingParams(temperature=0.0, max_tokens=max_new_tokens),
                                 use_tqdm=False)  # fmt: skip
        return [o.outputs[0].text for o in outs]


def answer_questions(model, processor, rows: list[dict], *, batch_size: int, max_new_tokens: int,
                     prompt_style: str = "paper", desc: str = "evaluate",
                     confidence: bool = False) -> list[dict]:  # fmt: skip
    """One record per question: the response, strict and lenient answers, correctness; with
    ``confidence``, each option's probability at the answer position (``option_probs``; None
    where it cannot be read). ``model`` is a transformers model or a ``VLLMGenerator``, whose
    logits are not read: its records carry no ``option_probs`` and are not scored."""
    from PIL import Image

    from skinr1.rewards import lenient_answer, strict_answer

    prompts = [prompt_for(r, prompt_style) for r in rows]
    images = [Image.open(r["image"]) for r in rows]
    gen = model if isinstance(model, VLLMGenerator) else partial(generate, model)
    responses = gen(processor, prompts, images, batch_size=batch_size,
                    max_new_tokens=max_new_tokens, desc=desc, prompt_style=prompt_style)  # fmt: skip
    records = []
    for r, resp in zip(rows, responses, strict=True):
        options = dict(zip(r["letters"], r["options"], strict=True))
        strict = strict_answer(resp, r["letters"], options)
        path = list(r.get("path") or [])
        right = options[r["answer"]]
        records.append({
            "id": r["id"], "dataset": r["dataset"], "kind": r["kind"], "answer": r["answer"],
            "strict": strict, "lenient": lenient_answer(resp, r["letters"], options),
            "correct": strict == r["answer"], "invalid": strict is None,
            "n_options": len(r["letters"]), "response": resp,
            # taxonomy depth of the correct option (1 = top-level category); None off the tree
            "depth": path.index(right) + 1 if right in path else None,
            # what the trust metrics read: the offered options, the truth, the image's annotations
            "image": r["image"], "letters": list(r["letters"]), "options": list(r["options"]),
            "node": r.get("node"),
            "malignancy": r.get("malignancy"), "skin_type": r.get("skin_type"),
            "features": r.get("features"),
        })  # fmt: skip
    if confidence and not isinstance(model, VLLMGenerator):
        from skinr1.confidence import option_probabilities

        probs = option_probabilities(model, processor, rows, responses, batch_size=batch_size,
                                     prompt_style=prompt_style)  # fmt: skip
        for rec, p in zip(records, probs, strict=True):
            rec["option_probs"] = p
    return records


def accuracy(records: Iterable[dict]) -> float:
    records = list(records)
    return sum(r["correct"] for r in records) / len(records) if records else float("nan")


def invalid_rate(records: Iterable[dict]) -> float:
    records = list(records)
    return sum(r["invalid"] for r in records) / len(records) if records else float("nan")


def macro_f1(records: Iterable[dict], labels: tuple[str, ...] = ("A", "B", "C")) -> float:
    """Macro-F1 over the classes present in the ground truth or the valid predictions.

    An invalid answer is a miss for its true class (it lowers recall) and is no class's
    prediction, so a model cannot raise F1 by refusing to answer.
    """
    records = list(records)
    if not records:
        return float("nan")
    present = {r["answer"] for r in records} | {r["strict"] for r in records if r["strict"]}
    f1s = []
    for c in (lab for lab in labels if lab in present):
        tp = sum(r["answer"] == c and r["strict"] == c for r in records)
        fp = sum(r["answer"] != c and r["strict"] == c for r in records)
        fn = sum(r["answer"] == c and r["strict"] != c for r in records)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1s) / len(f1s)


# Pieces of a trained rationale that belong in <thinking>: a rule's conclusion ("... indicate
# melanoma") or a differential ("versus nevus"). In the answer block they name a second option.
REASONING_PIECES = re.compile(r"\bindicates?\b|\bversus\b", re.I)


def invalid_reasons(records: Iterable[dict], kind: str):
    """Why answers of one question set are invalid, per model: no single ``<final diagnosis>``
    block (none, unclosed or repeated), or one block that names no single offered option, and of
    those how many carry reasoning (``REASONING_PIECES``) into the block."""
    import pandas as pd

    from skinr1.rewards import FINAL, extract_tags

    rows: dict[str, Counter] = {}
    for r in records:
        if r["set"] != kind:
            continue
        c = rows.setdefault(MODEL_LABELS.get(r["model"], r["model"]), Counter())
        c["answers"] += 1
        if not r["invalid"]:
            continue
        c["invalid"] += 1
        blocks = extract_tags(r["response"], FINAL)
        if len(blocks) != 1:
            c["no single answer block"] += 1
        else:
            c["block names no single option"] += 1
            c["of which reasoning in the block"] += bool(REASONING_PIECES.search(blocks[0]))
    cols = ["answers", "invalid", "no single answer block", "block names no single option",
            "of which reasoning in the block"]  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=cols).fillna(0).astype(int)


def summarise(records: list[dict], *, with_f1: bool = False) -> dict:
    """Per-dataset accuracy (and macro-F1), their unweighted mean ("avg", as in the paper's
    tables), the pooled accuracy and the invalid-answer rate."""
    by_ds: dict[str, list[dict]] = {}
    for r in records:
        by_ds.setdefault(r["dataset"], []).append(r)
    out: dict = {"per_dataset": {}, "n": len(records)}
    for ds, recs in sorted(by_ds.items()):
        entry = {"acc": accuracy(recs), "n": len(recs)}
        if with_f1:
            entry["f1"] = macro_f1(recs)
        out["per_dataset"][ds] = entry
    accs = [v["acc"] for v in out["per_dataset"].values()]
    out["avg_acc"] = sum(accs) / len(accs) if accs else float("nan")
    if with_f1:
        f1s = [v["f1"] for v in out["per_dataset"].values()]
        out["avg_f1"] = sum(f1s) / len(f1s) if f1s else float("nan")
        # the paper's Avg. columns weight each dataset by its test size
        out["wavg_f1"] = sum(v["f1"] * v["n"] for v in out["per_dataset"].values()) / len(records)
    # weighted by test size, the mean accuracy over datasets is the pooled accuracy
    out["pooled_acc"] = accuracy(records)
    out["invalid_rate"] = invalid_rate(records)
    # what guessing uniformly among the offered options scores, and how many options there were
    opts = [r["n_options"] for r in records]
    out["chance"] = sum(1 / n for n in opts) / len(opts) if opts else float("nan")
    out["options"] = dict(sorted(Counter(opts).items()))
    out["answer_distribution"] = dict(Counter(r["strict"] or "invalid" for r in records))
    by_depth: dict[int, list[dict]] = {}
    for r in records:
        if r.get("depth") is not None:
            by_depth.setdefault(r["depth"], []).append(r)
    out["by_depth"] = {
        d: {"acc": accuracy(recs), "n": len(recs), "chance": sum(1 / r["n_options"] for r in recs)
            / len(recs)} for d, recs in sorted(by_depth.items())
    }  # fmt: skip
    return out


def table(summaries: dict[str, dict], *, metric: str = "acc", datasets: list[str] | None = None):
    """Rows = models, columns = datasets, the mean over datasets ("Avg.") and the mean weighted
    by test size as the paper's tables compute it ("Avg. (weighted)"), laid out like Tables 2-5."""
    import pandas as pd

    cols = datasets or sorted({d for s in summaries.values() for d in s["per_dataset"]})
    rows = {}
    for model, s in summaries.items():
        row = {d: s["per_dataset"].get(d, {}).get(metric, float("nan")) for d in cols}
        row["Avg."] = s[f"avg_{metric}"]
        row["Avg. (weighted)"] = s["pooled_acc"] if metric == "acc" else s[f"wavg_{metric}"]
        rows[MODEL_LABELS.get(model, model)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def question_sets(P: Params, exclusions: dict | None = None) -> dict[str, list[dict]]:
    """The test question sets named in ``evaluation.sets``, as rows (Appendix A, §4.3).

    With ``data.exclude_train_duplicates``, a question whose image is also in a training split
    of any RL dataset (same ISIC id in the file name, or the same bytes) is left out of every
    set, before ``evaluation.max_samples``; ``exclusions``, when given, receives per set
    ``{"questions": before, "removed": n, "isic_id": n, "content": n}``."""
    import random
    from pathlib import Path

    from skinr1.datasets.omnimedvqa import load_questions
    from skinr1.datasets.selection import load_configured, split_samples
    from skinr1.ddx import load_ddx
    from skinr1.mcq import build_question_set, from_ood
    from skinr1.taxonomy import load_taxonomy

    E = P.evaluation
    tax = load_taxonomy()
    ddx = load_ddx(tax)
    results = load_configured(P.data.root, P.data.rl_datasets, tax, seed=P.seed,
                              check_images=P.data.check_images)  # fmt: skip
    test = split_samples(results, "test")
    sets = {}
    for kind in [k for k in E.sets if k != "ood"]:
        kw = {} if kind == "lesion" else {"n_options": P.grpo.n_options}
        if kind == "disease":
            kw["granularity_norm"] = P.grpo.granularity_norm
        qs, _ = build_question_set(test, kind, tax, ddx, P.seed, **kw)
        sets[kind] = [q.to_row() for q in qs]
    if "ood" in E.sets:
        load_configured(P.data.root, [P.data.ood_dataset], tax, seed=P.seed, check_images=False)
        ood, _ = load_questions(Path(P.data.root) / P.data.ood_dataset, tax)
        sets["ood"] = [from_ood(q).to_row() for q in ood]
    if E.skin_types:
        sets = _with_skin_types(sets, E.skin_types)
    if P.data.exclude_train_duplicates:
        sets = _without_train_images(sets, split_samples(results, "train"), exclusions)
    if E.max_samples:
        sets = {
            k: random.Random(P.seed).sample(v, min(E.max_samples, len(v))) for k, v in sets.items()
        }
    return sets


def _with_skin_types(sets: dict[str, list[dict]], path) -> dict[str, list[dict]]:
    """Rows without a skin type from their loader get the one ``evaluation.skin_types`` gives
    their image (the dataset's own record wins)."""
    import os
    from pathlib import Path

    from skinr1.datasets.annotations import load_annotations

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"evaluation.skin_types names {path}, which does not exist: give a CSV with the header "
            "image,fitzpatrick (the demo writes data/demo/annotations.csv) or set it to null"
        )
    types = load_annotations(path)
    return {k: [r if r.get("skin_type") is not None
                else {**r, "skin_type": types.get(os.path.abspath(r["image"]))} for r in rows]
            for k, rows in sets.items()}  # fmt: skip


def _without_train_images(sets: dict[str, list[dict]], train: list, exclusions: dict | None
                          ) -> dict[str, list[dict]]:  # fmt: skip
    """The sets without the questions whose image a training sample also has."""
    from skinr1.datasets.duplicates import TrainIndex, hash_files

    images = [r["image"] for rows in sets.values() for r in rows]
    hashes = hash_files([s.image for s in train] + images)
    index = TrainIndex([s.image for s in train], hashes)
    out = {}
    for kind, rows in sets.items():
        why = [index.why(r["image"], hashes.get(r["image"])) for r in rows]
        out[kind] = [r for r, w in zip(rows, why, strict=True) if w is None]
        if exclusions is not None:
            exclusions[kind] = {"questions": len(rows), "removed": len(rows) - len(out[kind]),
                                "isic_id": why.count("isic_id"), "content": why.count("content")}  # fmt: skip
    return out


def model_adapters(P: Params) -> dict[str, str | None]:
    """The models of Tables 2-5 the pipeline trains: base, SFT and each run of ``grpo_runs``
    (RL without SFT, SFT+RL); a missing adapter is an error, never a silently smaller table."""
    from pathlib import Path

    adapters = {"base": None, "sft": P.sft.out,
                **{run: str(P.grpo_adapter(run)) for run in P.grpo_runs}}  # fmt: skip
    for m, a in adapters.items():
        if a is not None and not (Path(a) / "adapter_config.json").exists():
            stage = "sft" if m == "sft" else f"grpo@{m}"
            raise FileNotFoundError(
                f"{m}: no adapter at {a}; run `dvc repro {stage}` first, or drop {m} from "
                "grpo_runs in params.yaml"
            )
    return {m: adapters[m] for m in MODELS if m in adapters}


def summaries_of(records: list[dict]) -> dict[str, dict[str, dict]]:
    """set -> model -> ``summarise`` of that model's answers to that set."""
    out: dict[str, dict[str, dict]] = {}
    for r in records:
        out.setdefault(r["set"], {}).setdefault(r["model"], [])
    return {
        kind: {m: summarise([r for r in records if r["set"] == kind and r["model"] == m],
                            with_f1=kind == "lesion") for m in models}
        for kind, models in out.items()
    }  # fmt: skip


def metrics_of(summaries: dict[str, dict[str, dict]]) -> dict:
    """The metrics.json layout: per set and model, averages, invalid rate, per-dataset accuracy."""
    return {
        kind: {m: {"avg_acc": s["avg_acc"], "pooled_acc": s["pooled_acc"],
                   "invalid_rate": s["invalid_rate"], "chance": s["chance"],
                   "options": {str(k): v for k, v in s["options"].items()},
                   **({"avg_f1": s["avg_f1"], "wavg_f1": s["wavg_f1"]} if "avg_f1" in s else {}),
                   "per_dataset": {d: v["acc"] for d, v in s["per_dataset"].items()},
                   "by_depth": {str(d): v for d, v in s["by_depth"].items()}}
               for m, s in v.items()}
        for kind, v in summaries.items()
    }  # fmt: skip


def paired_answers(records: list[dict], kind: str) -> dict[str, dict[str, dict]]:
    """model -> question id -> record for one set; every model must answer the same questions."""
    out: dict[str, dict[str, dict]] = {}
    for r in records:
        if r["set"] == kind:
            out.setdefault(r["model"], {})[r["id"]] = r
    ids = [set(v) for v in out.values()]
    if ids and any(i != ids[0] for i in ids):
        raise ValueError(f"set {kind!r}: the models answered different questions; rerun evaluate")
    return out


def intervals_of(records: list[dict], *, seed: int, n_boot: int = 5000) -> dict:
    """Per set and model: pooled and dataset-averaged accuracy and the invalid rate, each with
    its 95% stratified-bootstrap interval over the set's questions (the seed is params.yaml's)."""
    from skinr1.intervals import accuracy_ci

    out: dict = {}
    for kind in dict.fromkeys(r["set"] for r in records):
        for model, answers in paired_answers(records, kind).items():
            rows = [answers[i] for i in sorted(answers)]
            ds = [r["dataset"] for r in rows]
            acc = accuracy_ci([r["correct"] for r in rows], ds, seed=seed, n_boot=n_boot)
            inv = accuracy_ci([r["invalid"] for r in rows], ds, seed=seed, n_boot=n_boot)
            per_ds = {}
            for name in sorted(set(ds)):
                at = [r["correct"] for r in rows if r["dataset"] == name]
                per_ds[name] = accuracy_ci(at, [name] * len(at), seed=seed,
                                           n_boot=n_boot)["pooled"]  # fmt: skip
            depth = {}
            for d in sorted({r["depth"] for r in rows if r.get("depth") is not None}):
                at = [r for r in rows if r.get("depth") == d]
                depth[str(d)] = accuracy_ci([r["correct"] for r in at],
                                            [r["dataset"] for r in at], seed=seed,
                                            n_boot=n_boot)["pooled"]  # fmt: skip
            out.setdefault(kind, {})[model] = {"acc": acc["pooled"], "avg_acc": acc["avg"],
                                               "invalid_rate": inv["pooled"],
                                               "per_dataset": per_ds, "by_depth": depth}  # fmt: skip
    return out


# The orderings the paper reports (§4, Tables 2-5, Fig. 3): (claim, set, metric, a, b, direction,
# b's set when it differs). Direction 1: a > b; -1: a < b.
CLAIMS = [
    ("Skin-R1 (SFT+RL) beats the base model", "disease", "acc", "sft_rl", "base", 1, None),
    ("SFT beats the base model", "disease", "acc", "sft", "base", 1, None),
    ("RL after SFT adds to SFT", "disease", "acc", "sft_rl", "sft", 1, None),
    ("SFT+RL beats RL without SFT", "disease", "acc", "sft_rl", "rl_without_sft", 1, None),
    ("RL without SFT beats the base model", "disease", "acc", "rl_without_sft", "base", 1, None),
    ("SFT lowers the invalid-answer rate", "disease", "invalid_rate", "sft", "base", -1, None),
    ("SFT+RL beats the base model on lesion condition", "lesion", "acc", "sft_rl", "base", 1, None),
    ("SFT+RL beats the base model out of distribution", "ood", "acc", "sft_rl", "base", 1, None),
    ("DDx questions are harder than in-distribution ones (SFT+RL)", "ddx", "acc", "sft_rl",
     "sft_rl", -1, "disease"),
    ("Hierarchical questions are harder than in-distribution ones (SFT+RL)", "hierarchical", "acc",
     "sft_rl", "sft_rl", -1, "disease"),
]  # fmt: skip


def claims_of(records: list[dict], *, seed: int, n_boot: int = 5000) -> list[dict]:
    """Each of ``CLAIMS`` measured: the two values, their difference with its 95% bootstrap
    interval (paired over the same questions, with McNemar's p; unpaired across two sets), n,
    and whether it holds (the interval excludes zero in the paper's direction). A claim whose
    models or sets were not evaluated is listed with ``holds: false`` and the reason."""
    from skinr1.intervals import holds, paired_difference, unpaired_difference

    out = []
    for claim, kind, metric, a, b, direction, other in CLAIMS:
        entry = {"claim": claim, "set": kind if other is None else f"{kind} vs {other}",
                 "metric": metric, "model_a": a, "model_b": b}  # fmt: skip
        ans_a = paired_answers(records, kind).get(a)
        ans_b = paired_answers(records, other or kind).get(b)
        if not ans_a or not ans_b:
            missing = f"{a} on {kind}" if not ans_a else f"{b} on {other or kind}"
            out.append({**entry, "a": None, "b": None, "diff": None, "ci_low": None,
                        "ci_high": None, "p_value": None, "n": 0, "holds": False,
                        "note": f"not evaluated: {missing}"})  # fmt: skip
            continue
        key = "invalid" if metric == "invalid_rate" else "correct"
        xa = [ans_a[i][key] for i in sorted(ans_a)]
        xb = [ans_b[i][key] for i in sorted(ans_b)]
        if other is None:
            d = paired_difference(xa, xb, [ans_a[i]["dataset"] for i in sorted(ans_a)], seed=seed,
                                  n_boot=n_boot)  # fmt: skip
        else:
            d = unpaired_difference(xa, xb, seed=seed, n_boot=n_boot)
        out.append({**entry, "a": sum(xa) / len(xa), "b": sum(xb) / len(xb), "diff": d["value"],
                    "ci_low": d["ci_low"], "ci_high": d["ci_high"], "p_value": d["p_value"],
                    "n": d["n"], "holds": holds(d, direction),
                    **({} if d["informative"] else {"note": "too few questions for an interval"})})  # fmt: skip
    return out


def interval_table(metrics: dict, key: str = "acc"):
    """Rows = models, columns = sets: ``value [low, high]`` of each set's pooled accuracy (or
    ``key`` = ``invalid_rate``) with its 95% interval, and n per set in the column name."""
    import pandas as pd

    cols = {}
    for kind, per_model in metrics.items():
        some = next(iter(per_model.values()))
        name = f"{kind} (n={some['ci'][key]['n']}, chance {some['chance']:.2f})"
        cols[name] = {MODEL_LABELS.get(m, m): cell(v["ci"][key]) for m, v in per_model.items()}
    return pd.DataFrame(cols)


def dataset_table(metrics: dict, kind: str):
    """Rows = models, columns = datasets of one set: ``accuracy [low, high]`` with its 95%
    bootstrap interval and the dataset's n in the column name (Tables 2-5 with intervals)."""
    import pandas as pd

    per_model = metrics[kind]
    some = next(iter(per_model.values()))["ci"]["per_dataset"]
    cols = {f"{d} (n={v['n']})": {MODEL_LABELS.get(m, m): cell(s["ci"]["per_dataset"][d])
                                  for m, s in per_model.items()} for d, v in some.items()}  # fmt: skip
    return pd.DataFrame(cols)


def depth_table(metrics: dict, kind: str):
    """Rows = models, columns = the taxonomy depth of the correct option in one set:
    ``accuracy [low, high]`` with its 95% interval, n and chance level in the column name. Depth 1
    is a top-level category; a model that never names a subtype scores 0 at depth 3 and 4."""
    import pandas as pd

    per_model = metrics[kind]
    some = next(iter(per_model.values()))
    cols = {}
    for d, v in some["by_depth"].items():
        name = f"depth {d} (n={v['n']}, chance {v['chance']:.2f})"
        cols[name] = {MODEL_LABELS.get(m, m): cell(s["ci"]["by_depth"][d])
                      for m, s in per_model.items()}  # fmt: skip
    return pd.DataFrame(cols)


def verdict(claim: dict) -> str:
    """What a measured claim shows: ``holds``, ``no difference`` (its interval spans zero) or
    ``opposite`` (the interval excludes zero the other way)."""
    if claim["holds"]:
        return "holds"
    return "no difference" if claim["ci_low"] <= 0 <= claim["ci_high"] else "opposite"


def claims_table(claims: list[dict]):
    """The claims as a table: values, difference [95% interval], McNemar p, n, verdict."""
    import pandas as pd

    rows = []
    for c in claims:
        if c["diff"] is None:
            rows.append({"claim": c["claim"], "set": c["set"], "difference [95% CI]": "",
                         "p (McNemar)": "", "n": 0, "verdict": c["note"]})  # fmt: skip
            continue
        shown = {"holds": "holds", "no difference": "no difference shown",
                 "opposite": "the opposite holds"}[verdict(c)]  # fmt: skip
        rows.append({
            "claim": c["claim"], "set": c["set"], "a": round(c["a"], 3), "b": round(c["b"], 3),
            "difference [95% CI]": f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]",
            "p (McNemar)": "" if c["p_value"] is None else f"{c['p_value']:.3g}", "n": c["n"],
            "verdict": shown + (f" ({c['note']})" if c.get("note") else ""),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("claim")


HEADLINE = {  # name -> (set, key) in metrics.json
    "disease_acc": ("disease", "avg_acc"), "disease_pooled_acc": ("disease", "pooled_acc"),
    "disease_invalid": ("disease", "invalid_rate"), "lesion_acc": ("lesion", "avg_acc"),
    "lesion_f1": ("lesion", "avg_f1"), "ddx_acc": ("ddx", "pooled_acc"),
    "hierarchical_acc": ("hierarchical", "pooled_acc"), "ood_acc": ("ood", "avg_acc"),
}  # fmt: skip


def headline(metrics: dict) -> dict[str, dict[str, float]]:
    """Per model, the few numbers a reader compares first, flat, for ``dvc metrics show`` (one
    row per model) and ``dvc metrics diff``; sets that were not evaluated are left out."""
    models = {m for per_model in metrics.values() for m in per_model}
    return {
        m: {name: round(metrics[kind][m][key], 4) for name, (kind, key) in HEADLINE.items()
            if kind in metrics and m in metrics[kind] and key in metrics[kind][m]}
        for m in sorted(models, key=MODELS.index)
    }  # fmt: skip


def run(P: Params) -> list[dict]:
    """Stage 05 as notebook 05 and ``python -m skinr1 evaluate`` run it: every model answers
    every set (questions split over the processes, answers gathered in order), then
    ``data/eval_records.jsonl``, ``<evaluation.out>/metrics.json`` (everything, nested, with 95%
    intervals), ``claims.json`` (the paper's orderings, tested), ``headline/<model>.json`` and
    ``cards/<model>.md`` on the main process."""
    import json
    import shutil
    from pathlib import Path

    from skinr1.model import load_processor, save_merged
    from skinr1.training import state

    E = P.evaluation
    st = state()
    exclusions: dict = {}
    with st.main_process_first():
        sets = question_sets(P, exclusions)
    processor = load_processor(P.model.base, max_pixels=P.model.max_pixels,
                               min_pixels=P.model.min_pixels,
                               trust_remote_code=P.model.trust_remote_code)  # fmt: skip
    adapters = model_adapters(P)
    swaps, unswapped = {}, {}
    for kind in [k for k in E.swap_sets if k in sets]:
        try:
            swaps[kind] = option_swap.swapped(sets[kind], P.seed)
        except ValueError as e:  # too few labels to swap between: reported, not measured
            unswapped[kind] = str(e)
    records, swap_records = [], []
    for name, adapter in adapters.items():
        if E.backend == "vllm":
            chain = adapter_chain(adapter)
            path = P.model.base
            if chain:
                dest = checkpoint_dir("eval-merged", P.model.base, *map(fingerprint, chain))
                path = str(save_merged(P.model, chain, dest))
            model = VLLMGenerator(path, max_model_len=P.grpo.vllm_max_model_length,
                                  gpu_memory_utilization=P.grpo.vllm_gpu_memory_utilization,
                                  trust_remote_code=P.model.trust_remote_code)  # fmt: skip
        else:
            model = load_eval_model(P.model, adapter)
        asked = [(kind, rows, records) for kind, rows in sets.items()]
        asked += [(kind, rows, swap_records) for kind, rows in swaps.items()]
        for kind, rows, into in asked:
            with st.split_between_processes(rows) as shard:
                mine = answer_questions(model, processor, list(shard), batch_size=E.batch_size,
                                        max_new_tokens=E.max_new_tokens,
                                        prompt_style=P.model.prompt_style, desc=f"{name}/{kind}",
                                        confidence=into is records and kind in E.confidence_sets)  # fmt: skip
            if st.num_processes > 1:
                from accelerate.utils import gather_object

                mine = gather_object(mine)
            into += [{"model": name, "set": kind, **r} for r in mine]
        del model
    if st.is_main_process:
        Path("data").mkdir(exist_ok=True)
        with open("data/eval_records.jsonl", "w") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")
        Path(E.out).mkdir(exist_ok=True)
        metrics = metrics_of(summaries_of(records))
        for kind, per_model in metrics.items():  # the same for every model: one question set
            for values in per_model.values():
                values["excluded_duplicates"] = exclusions.get(kind, {}).get("removed", 0)
        for kind, per_model in intervals_of(records, seed=P.seed).items():
            for model, ci in per_model.items():
                metrics[kind][model]["ci"] = ci
        Path(E.out, "metrics.json").write_text(json.dumps(metrics, indent=1))
        claims = claims_of(records, seed=P.seed)
        Path(E.out, "claims.json").write_text(json.dumps(claims, indent=1))
        trust = trust_report(P, records)
        trust["option_swap"] = option_swap_report(records, swap_records, seed=P.seed)
        trust["option_swap_skipped"] = unswapped
        Path(E.out, "trust.json").write_text(json.dumps(trust, indent=1))
        shutil.rmtree(Path(E.out, "headline"), ignore_errors=True)  # no row of a dropped model
        Path(E.out, "headline").mkdir()
        shutil.rmtree(Path(E.out, "cards"), ignore_errors=True)
        Path(E.out, "cards").mkdir()
        for model, values in headline(metrics).items():
            Path(E.out, "headline", f"{model}.json").write_text(json.dumps(values, indent=1))
            if adapters[model] is not None:
                card = model_card.render(P, model, adapters[model], metrics=values)
                Path(E.out, "cards", f"{model}.md").write_text(card)
    st.wait_for_everyone()
    return records


def trust_report(P: Params, records: list[dict]) -> dict:
    """``metrics/trust.json``: per model the headline trust metrics, per set and model every
    metric with its interval and what was not scored (``skinr1.trust``)."""
    from skinr1 import trust
    from skinr1.rules import load_rules, load_vocabulary
    from skinr1.taxonomy import load_taxonomy

    tax = load_taxonomy()
    kb = trust.TrustKnowledge(tax, load_rules(tax), load_vocabulary(), P.evaluation.feature_truth)
    sets = trust.trust_of(records, kb, seed=P.seed)
    return {"models": trust.headline(sets), "sets": sets, "seed": P.seed,
            "feature_truth": P.evaluation.feature_truth}  # fmt: skip


def option_swap_report(records: list[dict], swap_records: list[dict], *, seed: int) -> dict:
    """Per set and model, ``option_swap.option_dependence`` of its answers before and after the
    swap (``evaluation.swap_sets``), paired by question."""
    out: dict[str, dict] = {}
    for r in swap_records:
        out.setdefault(r["set"], {}).setdefault(r["model"], [])
    for kind, per_model in out.items():
        for model in per_model:
            before = {r["id"]: r for r in records if r["set"] == kind and r["model"] == model}
            after = [r for r in swap_records if r["set"] == kind and r["model"] == model]
            per_model[model] = option_swap.option_dependence(
                [before[r["id"]] for r in after], after, seed=seed
            )
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m skinr1 evaluate --params params.yaml`` (also under ``accelerate launch``)."""
    from skinr1.launch import parse_stage_args

    P, _ = parse_stage_args("evaluate", argv, ("model", "data", "evaluation", "compute"))
    return 0 if run(P) else 1
