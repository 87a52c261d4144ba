"""Evaluation: greedy batched answers to the question sets, strict extraction, and the metrics of
Tables 2-5 (accuracy per dataset and on average, lesion-condition macro-F1, invalid-answer rate)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from skinr1.config import ModelParams
from skinr1.prompts import template

MODELS = ("base", "sft", "rl_without_sft", "sft_rl")
MODEL_LABELS = {
    "base": "Base (no fine-tuning)",
    "sft": "SFT",
    "rl_without_sft": "RL without SFT",
    "sft_rl": "Skin-R1 (SFT + RL)",
}


def prompt_for(row: dict, style: str = "paper") -> str:
    """Appendix D's evaluation prompt (or its compact variant) for a question row of any kind."""
    kind = row["kind"]
    if kind == "lesion":
        return template("lesion", style)
    if kind == "ood":
        return template("ood", style).format(question=row["question"])
    letters = "/".join(row["letters"])
    return template("diagnosis", style).format(question=row["question"], letters=letters)


def load_eval_model(model: ModelParams, adapter: str | None = None):
    """Base model, with the adapter merged in (merged weights run faster under greedy decoding)."""
    from skinr1.model import load_model

    m = load_model(model.base, dtype=model.dtype, trust_remote_code=model.trust_remote_code,
                   attn_implementation=model.attn_implementation)  # fmt: skip
    if adapter:
        from peft import PeftModel

        m = PeftModel.from_pretrained(m, adapter).merge_and_unload()
    return m.eval()


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
    for i in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False):
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


def answer_questions(model, processor, rows: list[dict], *, batch_size: int, max_new_tokens: int,
                     prompt_style: str = "paper", desc: str = "evaluate") -> list[dict]:  # fmt: skip
    """One record per question: the response, strict and lenient answers, correctness."""
    from PIL import Image

    from skinr1.rewards import lenient_answer, strict_answer

    prompts = [prompt_for(r, prompt_style) for r in rows]
    images = [Image.open(r["image"]) for r in rows]
    responses = generate(model, processor, prompts, images, batch_size=batch_size,
                         max_new_tokens=max_new_tokens, desc=desc, prompt_style=prompt_style)  # fmt: skip
    records = []
    for r, resp in zip(rows, responses, strict=True):
        options = dict(zip(r["letters"], r["options"], strict=True))
        strict = strict_answer(resp, r["letters"], options)
        records.append({
            "id": r["id"], "dataset": r["dataset"], "kind": r["kind"], "answer": r["answer"],
            "strict": strict, "lenient": lenient_answer(resp, r["letters"], options),
            "correct": strict == r["answer"], "invalid": strict is None, "response": resp,
        })  # fmt: skip
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
    out["pooled_acc"] = accuracy(records)
    out["invalid_rate"] = invalid_rate(records)
    out["answer_distribution"] = dict(Counter(r["strict"] or "invalid" for r in records))
    return out


def table(summaries: dict[str, dict], *, metric: str = "acc", datasets: list[str] | None = None):
    """Rows = models, columns = datasets + Avg, laid out like Tables 2-5."""
    import pandas as pd

    cols = datasets or sorted({d for s in summaries.values() for d in s["per_dataset"]})
    rows = {}
    for model, s in summaries.items():
        row = {d: s["per_dataset"].get(d, {}).get(metric, float("nan")) for d in cols}
        row["Avg."] = s[f"avg_{metric}"]
        rows[MODEL_LABELS.get(model, model)] = row
    return pd.DataFrame.from_dict(rows, orient="index")
