"""Bootstrap intervals and McNemar's test, on answers whose statistics are known exactly."""

import pytest

from skinr1.intervals import (
    accuracy_ci,
    holds,
    mcnemar_p,
    paired_difference,
    unpaired_difference,
)


def test_mcnemar_exact_p_values():
    assert mcnemar_p([True] * 13 + [False] * 13, [False] * 13 + [True] * 13) == 1.0
    # 6 discordant pairs all one way: 2 x (1/2)^6
    assert mcnemar_p([True] * 6 + [False] * 4, [False] * 6 + [False] * 4) == pytest.approx(2 / 64)
    # 2 vs 8 discordant: 2 x (C(10,0) + C(10,1) + C(10,2)) / 2^10
    a = [True] * 2 + [False] * 8 + [True] * 5
    b = [False] * 2 + [True] * 8 + [True] * 5
    assert mcnemar_p(a, b) == pytest.approx(2 * 56 / 1024)
    assert mcnemar_p([True, False], [True, False]) == 1.0  # no discordant pair


def test_pooled_is_weighted_by_test_size_and_avg_is_not():
    correct = [True] * 10 + [False] * 30
    datasets = ["A"] * 10 + ["B"] * 30
    ci = accuracy_ci(correct, datasets, seed=1)
    assert ci["pooled"]["value"] == 0.25 and ci["avg"]["value"] == 0.5
    # every replicate keeps the strata whole, and each stratum is constant here
    assert ci["avg"]["ci_low"] == ci["avg"]["ci_high"] == 0.5
    assert ci["pooled"]["ci_low"] == ci["pooled"]["ci_high"] == 0.25
    assert ci["pooled"]["n"] == 40 and ci["pooled"]["informative"]


def test_interval_width_matches_the_binomial_and_is_reproducible():
    correct = [i % 2 == 0 for i in range(1000)]
    ci = accuracy_ci(correct, ["A"] * 1000, seed=7)["pooled"]
    assert ci["value"] == 0.5
    # normal approximation: 0.5 +- 1.96 * sqrt(0.25 / 1000) = 0.5 +- 0.031
    assert 0.465 < ci["ci_low"] < 0.475 and 0.525 < ci["ci_high"] < 0.535
    assert accuracy_ci(correct, ["A"] * 1000, seed=7)["pooled"] == ci


def test_paired_and_unpaired_differences_and_what_holds():
    a = [True] * 70 + [False] * 30
    b = [True] * 40 + [False] * 60
    d = paired_difference(a, b, ["A"] * 100, seed=3)
    assert d["value"] == pytest.approx(0.3) and d["ci_low"] > 0.15 and d["p_value"] < 1e-6
    assert holds(d) and not holds(d, -1)
    same = paired_difference(a, a, ["A"] * 100, seed=3)
    assert same["value"] == same["ci_low"] == same["ci_high"] == 0 and same["p_value"] == 1.0
    assert not holds(same) and not holds(same, -1)
    u = unpaired_difference(a, b[:50], seed=3)
    assert u["value"] == pytest.approx(0.7 - 0.8) and u["p_value"] is None and u["n_b"] == 50
    small = paired_difference(a[:10], b[:10], ["A"] * 10, seed=3)
    assert not small["informative"] and not holds(small)  # too few questions to claim anything
    with pytest.raises(ValueError, match="same questions"):
        paired_difference(a, b[:50], ["A"] * 100)


def _records(model, kind, correct, invalid=None, dataset="HAM10000"):
    invalid = invalid or [False] * len(correct)
    return [{"model": model, "set": kind, "id": f"q{i}", "dataset": dataset, "correct": c,
             "invalid": v} for i, (c, v) in enumerate(zip(correct, invalid, strict=True))]  # fmt: skip


def test_claims_test_the_papers_orderings_on_the_same_questions():
    from skinr1.evaluation import claims_of, claims_table

    records = (
        _records("base", "disease", [True] * 20 + [False] * 80, [True] * 40 + [False] * 60)
        + _records("sft", "disease", [True] * 60 + [False] * 40)
        + _records("sft_rl", "disease", [True] * 61 + [False] * 39)
        + _records("sft_rl", "ddx", [True] * 30 + [False] * 70)
    )
    claims = {c["claim"]: c for c in claims_of(records, seed=0, n_boot=2000)}
    sft = claims["SFT beats the base model"]
    assert (sft["a"], sft["b"], sft["n"]) == (0.6, 0.2, 100) and sft["holds"]
    assert sft["diff"] == pytest.approx(0.4) and sft["p_value"] < 1e-9
    rl = claims["RL after SFT adds to SFT"]  # one more right answer of 100: no difference
    assert rl["diff"] == pytest.approx(0.01) and not rl["holds"] and rl["ci_low"] == 0.0
    assert claims["SFT lowers the invalid-answer rate"]["holds"]  # 0.40 -> 0.00
    ddx = claims["DDx questions are harder than in-distribution ones (SFT+RL)"]
    assert ddx["set"] == "ddx vs disease" and ddx["holds"] and ddx["p_value"] is None
    missing = claims["SFT+RL beats RL without SFT"]
    assert not missing["holds"] and missing["note"] == "not evaluated: rl_without_sft on disease"
    table = claims_table(list(claims.values()))
    assert table.loc["RL after SFT adds to SFT", "verdict"] == "no difference shown"
    assert table.loc["SFT beats the base model", "difference [95% CI]"].startswith("+0.400 [")


def test_models_answering_different_questions_is_an_error():
    from skinr1.evaluation import claims_of

    records = _records("base", "disease", [True] * 40) + _records("sft", "disease", [True] * 39)
    with pytest.raises(ValueError, match="answered different questions"):
        claims_of(records, seed=0)


def test_accuracy_by_answer_depth_with_intervals_and_its_table():
    from skinr1.evaluation import depth_table, intervals_of, metrics_of, summaries_of

    # 40 questions whose answer is a depth-2 node (30 right), 40 at depth 3 (none right), and
    # 10 lesion-like answers off the tree (no depth), 4 options each
    records = [
        {"model": "sft", "set": "hierarchical", "id": f"q{i}", "dataset": "derm12345",
         "correct": i < 30 or 80 <= i < 85, "invalid": False, "n_options": 4, "strict": "A",
         "answer": "A", "depth": 2 if i < 40 else 3 if i < 80 else None}
        for i in range(90)
    ]  # fmt: skip
    metrics = metrics_of(summaries_of(records))
    by = metrics["hierarchical"]["sft"]["by_depth"]
    assert by == {"2": {"acc": 0.75, "n": 40, "chance": 0.25},
                  "3": {"acc": 0.0, "n": 40, "chance": 0.25}}  # fmt: skip
    ci = intervals_of(records, seed=0, n_boot=2000)["hierarchical"]["sft"]["by_depth"]
    assert ci["2"]["value"] == 0.75 and ci["2"]["ci_low"] < 0.75 < ci["2"]["ci_high"]
    assert (ci["3"]["ci_low"], ci["3"]["ci_high"]) == (0.0, 0.0)
    metrics["hierarchical"]["sft"]["ci"] = intervals_of(records, seed=0, n_boot=2000)[
        "hierarchical"
    ]["sft"]
    t = depth_table(metrics, "hierarchical")
    assert list(t.columns) == ["depth 2 (n=40, chance 0.25)", "depth 3 (n=40, chance 0.25)"]
    assert t.iloc[0, 1] == "0.000 [0.000, 0.000]"


def test_per_dataset_accuracies_carry_their_own_intervals():
    from skinr1.evaluation import dataset_table, intervals_of

    records = [
        {"model": "sft", "set": "disease", "id": f"q{i}", "dataset": "HAM10000" if i < 40 else "PAD",
         "correct": i < 20 or 40 <= i < 50, "invalid": False, "n_options": 4}
        for i in range(50)
    ]  # fmt: skip
    ci = intervals_of(records, seed=0, n_boot=2000)["disease"]["sft"]["per_dataset"]
    assert (ci["HAM10000"]["value"], ci["HAM10000"]["n"]) == (0.5, 40)
    assert (ci["PAD"]["value"], ci["PAD"]["n"], ci["PAD"]["informative"]) == (1.0, 10, False)
    assert ci["PAD"]["ci_low"] == ci["PAD"]["ci_high"] == 1.0
    t = dataset_table({"disease": {"sft": {"ci": {"per_dataset": ci}}}}, "disease")
    assert list(t.columns) == ["HAM10000 (n=40)", "PAD (n=10)"]
    assert t.iloc[0, 1] == "1.000 [1.000, 1.000]"
