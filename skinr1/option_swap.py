"""Do a model's answers follow the options it is offered? (ours; the paper does not ask)

Each question is asked a second time with the options of another question, one whose label
differs. A model that reads the options answers the second question with one of its options; a
model that names what it sees, whatever is offered, gives the same answer twice and, the second
time, names nothing on offer. Strict extraction counts such an answer invalid, so this is what
separates a model that knows too little from one that does not read the question.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from skinr1.intervals import accuracy_ci, cell, paired_difference

_FINAL = re.compile(r"<final diagnosis>(.*?)</final diagnosis>", re.S)


def swapped(rows: Sequence[dict], seed: int) -> list[dict]:
    """Every question row with the options (letters, texts, question line, answer letter) of
    another row whose ``node`` differs, drawn by ``seed``; image, label and path stay its own.

    The donors are a seeded shuffle read as a cycle: row k takes the next row along it with
    another label, so the same rows and seed give the same questions."""
    n = len(rows)
    if len({r["node"] for r in rows}) < 2:
        raise ValueError(
            f"option swap: the {n} questions need at least two labels to swap options between"
        )
    order = random.Random(seed).sample(range(n), n)
    out: list[dict] = [{}] * n
    for k, i in enumerate(order):
        j = next(order[(k + s) % n] for s in range(1, n) if rows[order[(k + s) % n]]["node"]
                 != rows[i]["node"])  # fmt: skip
        d = rows[j]
        out[i] = {**rows[i], "letters": list(d["letters"]), "options": list(d["options"]),
                  "question": d["question"], "answer": d["answer"], "swapped_from": d["id"]}  # fmt: skip
    return out


def final_text(response: str) -> str | None:
    """The text of the response's one ``<final diagnosis>`` block, lower-cased and stripped;
    None without exactly one block."""
    blocks = _FINAL.findall(response)
    return blocks[0].strip().lower() if len(blocks) == 1 else None


def option_dependence(original: Sequence[dict], swap: Sequence[dict], *, seed: int,
                      n_boot: int = 5000) -> dict:  # fmt: skip
    """One model's answers to the same questions before and after the swap (records of
    ``evaluation.answer_questions``, aligned): the share that name an offered option each time,
    the share whose answer is word for word the same, and the change in the first, each with its
    95% bootstrap interval over the questions (stratified by dataset) and n."""
    if len(original) != len(swap) or not original:
        raise ValueError("option_dependence needs the same questions, in order, before and after")
    for a, b in zip(original, swap, strict=True):
        if a["id"] != b["id"]:
            raise ValueError(f"option_dependence: question {a['id']!r} is paired with {b['id']!r}")
    ds = [r["dataset"] for r in original]
    valid_before = [not r["invalid"] for r in original]
    valid_after = [not r["invalid"] for r in swap]
    same = [final_text(a["response"]) is not None
            and final_text(a["response"]) == final_text(b["response"])
            for a, b in zip(original, swap, strict=True)]  # fmt: skip
    kw = {"n_boot": n_boot, "seed": seed}
    return {
        "n": len(original),
        "offered_original": accuracy_ci(valid_before, ds, **kw)["pooled"],
        "offered_swapped": accuracy_ci(valid_after, ds, **kw)["pooled"],
        "unchanged": accuracy_ci(same, ds, **kw)["pooled"],
        "offered_change": paired_difference(valid_after, valid_before, ds, **kw),
    }


def dependence_table(report: dict, kind: str, labels: dict[str, str]):
    """Per model: offered before and after the swap, unchanged answers, each ``x [lo, hi]``."""
    import pandas as pd

    rows = {
        labels.get(m, m): {
            "n": d["n"],
            "names an offered option": cell(d["offered_original"]),
            "... with another question's options": cell(d["offered_swapped"]),
            "difference": cell(d["offered_change"]),
            "same answer both times": cell(d["unchanged"]),
        }
        for m, d in report[kind].items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")
