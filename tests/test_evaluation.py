import math

import pytest

from skinr1.evaluation import accuracy, invalid_rate, macro_f1, prompt_for, summarise, table
from skinr1.prompts import template, user_message


def rec(ds, answer, strict):
    return {
        "dataset": ds,
        "answer": answer,
        "strict": strict,
        "correct": strict == answer,
        "invalid": strict is None,
    }


RECORDS = [
    rec("HAM10000", "A", "A"),
    rec("HAM10000", "B", "A"),
    rec("HAM10000", "C", None),
    rec("PAD-UFES-20", "A", "A"),
    rec("PAD-UFES-20", "B", "B"),
]


def test_accuracy_invalid_rate_and_macro_f1_by_hand():
    assert accuracy(RECORDS) == pytest.approx(3 / 5)
    assert invalid_rate(RECORDS) == pytest.approx(1 / 5)
    # A: tp 2, fp 1, fn 0 -> 4/5; B: tp 1, fp 0, fn 1 -> 2/3; C: tp 0, fp 0, fn 1 -> 0.
    assert macro_f1(RECORDS) == pytest.approx((4 / 5 + 2 / 3 + 0) / 3)
    assert math.isnan(accuracy([]))


def test_refusing_to_answer_does_not_raise_f1():
    all_invalid = [rec("X", "A", None), rec("X", "B", None)]
    assert macro_f1(all_invalid) == 0.0


def test_summarise_averages_datasets_unweighted_and_tables_like_the_paper():
    s = summarise(RECORDS, with_f1=True)
    assert s["per_dataset"]["HAM10000"]["acc"] == pytest.approx(1 / 3)
    assert s["per_dataset"]["PAD-UFES-20"]["acc"] == 1.0
    assert s["avg_acc"] == pytest.approx((1 / 3 + 1) / 2)
    assert s["pooled_acc"] == pytest.approx(3 / 5)
    assert s["answer_distribution"] == {"A": 3, "invalid": 1, "B": 1}
    t = table({"base": s, "sft_rl": summarise(RECORDS[:1])})
    assert list(t.columns) == ["HAM10000", "PAD-UFES-20", "Avg."]
    assert list(t.index) == ["Base (no fine-tuning)", "Skin-R1 (SFT + RL)"]
    assert math.isnan(t.loc["Skin-R1 (SFT + RL)", "PAD-UFES-20"])


def test_prompt_for_each_kind_uses_its_appendix_d_template():
    row = {"kind": "disease", "question": "Q? A: x B: y", "letters": ["A", "B"]}
    assert "answer: Q? A: x B: y" in prompt_for(row) and "(A/B)" in prompt_for(row)
    assert "Only output one option: A, B, or C." in prompt_for({**row, "kind": "lesion"})
    assert "choose the most likely diagnosis from the options" in prompt_for({**row, "kind": "ood"})
    # Compact: SFT's own instruction, word for word, then the question with its options.
    assert prompt_for(row, "compact") == template("sft_type1", "compact") + " Q? A: x B: y"


def test_user_message_places_the_image_by_style():
    assert user_message("t") == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "t"}]}
    ]
    assert user_message("t", "compact") == [
        {"role": "user", "content": [{"type": "text", "text": "t"}, {"type": "image"}]}
    ]
