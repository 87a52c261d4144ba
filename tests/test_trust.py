"""The trustworthiness metrics on hand-made answers, with values worked out by hand."""

import math

import pytest

from skinr1.rules import Features, load_vocabulary
from skinr1.trust import (
    FeatureReader,
    condition_confusion,
    consistency,
    ece,
    faithfulness,
    feature_keys,
    missed_malignancy,
    rationale_scores,
    reliability,
    risk_coverage,
    skin_type_accuracy,
    supports,
    thinking_of,
)

VOCAB = load_vocabulary()
LESION = {"letters": ["A", "B", "C"], "options": ["benign", "malignant", "precancerous in situ"]}


def test_feature_keys_include_defaults():
    f = Features(colours=("black",), structures=("blue-white veil",), surface=("scaly",))
    assert feature_keys(f) == {
        "symmetry:symmetric", "border:regular", "elevation:flat", "size:medium",
        "colours:black", "structures:blue-white veil", "surface:scaly",
    }  # fmt: skip


def test_reader_longest_phrase_names_blanked_and_negation():
    reader = FeatureReader(VOCAB, names=["nodular melanoma", "melanoma"])
    text = (
        "Asymmetric raised lesion with irregular border; colours dark brown, blue-grey; "
        "blue-white veil, irregular dots and globules. Rule: atypical pigment network indicates "
        "nodular melanoma. No milia-like cysts"
    )
    present, absent = reader.read(text)
    assert present == {
        "symmetry:asymmetric", "elevation:raised", "border:irregular", "colours:dark brown",
        "colours:blue-grey", "structures:blue-white veil", "structures:irregular dots and globules",
        "structures:atypical pigment network",
    }  # fmt: skip
    assert absent == {"structures:milia-like cysts"}


def test_reader_blanks_whole_names_only_longest_first():
    reader = FeatureReader({"colours": ["blue"], "structures": ["nodule"]},
                           names=["blue nevus", "nevus", "nodule"])  # fmt: skip
    # "blue nevus" goes whole, so its "blue" is no colour; "nodule-like" and "nodules" are
    # other words than the name "nodule", so they stay (the vocabulary reads neither)
    assert reader.names.sub("#", "Blue nevus, nevus-like; nodules, nodule-like, NODULE.") == (
        "#, nevus-like; nodules, nodule-like, #."
    )
    assert reader.read("a blue nevus; blue, a nodule") == ({"colours:blue"}, set())


def test_reader_needs_border_word_and_reads_surface():
    reader = FeatureReader(VOCAB)
    present, _ = reader.read("Regular dots and globules, regular streaks; scaly surface, waxy")
    assert present == {
        "structures:regular dots and globules", "structures:regular streaks",
        "surface:scaly", "surface:waxy",
    }  # fmt: skip


def test_faithfulness_consistency_and_support():
    stated = frozenset({"colours:black", "structures:blue-white veil", "symmetry:asymmetric"})
    truth = frozenset(
        {"colours:black", "structures:blue-white veil", "size:large", "border:irregular"}
    )
    assert faithfulness(stated, truth) == (2 / 3, 2 / 4)
    scope = frozenset({"structures:blue-white veil", "structures:regular streaks"})
    assert faithfulness(stated, truth, scope) == (1.0, 1.0)
    p, r = faithfulness(frozenset(), truth)
    assert math.isnan(p) and r == 0.0
    rule = truth | {"symmetry:asymmetric"}
    assert consistency(stated, rule) == 1.0 and supports(stated, rule)
    assert consistency(stated, truth) == 2 / 3 and not supports(stated, truth)
    only_defaults = frozenset({"symmetry:symmetric"})
    assert not supports(only_defaults, only_defaults | rule)


def _rec(i, response, strict="A", correct=True, dataset="d", **kw):
    return {"id": str(i), "dataset": dataset, "response": response, "strict": strict,
            "correct": correct, "letters": ["A", "B"], "options": ["melanoma", "nevus"], **kw}  # fmt: skip


def test_rationale_scores_counts_what_it_cannot_score():
    reader = FeatureReader(VOCAB, names=["melanoma", "nevus"])
    truth = {"1": frozenset({"colours:black", "structures:blue-white veil"}), "2": None,
             "3": frozenset({"colours:black"}), "4": frozenset({"colours:black"})}  # fmt: skip
    rules = {"melanoma": frozenset({"colours:black", "structures:blue-white veil"})}
    records = [
        _rec(1, "<thinking>Black colour; blue-white veil.</thinking>"),
        _rec(2, "<thinking>Black colour.</thinking>"),
        _rec(3, "<thinking>It looks odd.</thinking>"),
        _rec(4, "melanoma"),
        _rec(5, "<thinking>Black, pink.</thinking>", strict="B", correct=False),
    ]
    truth["5"] = frozenset({"colours:black"})
    scored, skipped = rationale_scores(records, reader, truth, rules)
    assert skipped == {"no annotation": 1, "no vocabulary feature": 1, "no thinking": 1}
    assert [(s["id"], s["precision"], s["recall"], s["supports"]) for s in scored] == [
        ("1", 1.0, 1.0, True), ("5", 0.5, 1.0, None),
    ]  # fmt: skip
    assert thinking_of("<thinking>a</thinking><thinking>b</thinking>") is None


def test_ece_and_reliability_by_hand():
    conf, correct = [0.9, 0.9, 0.1, 0.6], [True, False, False, True]
    assert ece(conf, correct) == pytest.approx((2 * 0.4 + 0.1 + 0.4) / 4)
    bins = reliability(conf, correct)
    assert [(b["lo"], b["n"], b["accuracy"]) for b in bins] == [(0.1, 1, 0.0), (0.6, 1, 1.0),
                                                               (0.9, 2, 0.5)]  # fmt: skip
    assert reliability([1.0], [True])[0]["lo"] == 0.9  # 1.0 falls in the top bin


def test_risk_coverage_ties_and_target():
    rc = risk_coverage([0.9, 0.8, 0.8, 0.3], [True, True, False, True])
    assert rc["aurc"] == pytest.approx((0 + 0.25 + 1 / 3 + 0.25) / 4)
    assert [(p["threshold"], p["coverage"]) for p in rc["points"]] == [(0.9, 0.25), (0.8, 0.75),
                                                                     (0.3, 1.0)]  # fmt: skip
    assert rc["points"][1]["risk"] == pytest.approx(1 / 3)
    assert (rc["coverage_at_target"], rc["threshold"]) == (0.25, 0.9)
    none = risk_coverage([0.5, 0.5], [False, True])
    assert (none["coverage_at_target"], none["threshold"]) == (0.0, None)
    assert none["aurc"] == pytest.approx((0.5 + 0.5) / 2)


def test_missed_malignancy_and_confusion():
    condition = {"melanoma": "malignant", "nevus": "benign"}
    recs = [
        {**LESION, "id": "1", "dataset": "x", "kind": "lesion", "malignancy": "malignant", "strict": "A"},
        {**LESION, "id": "2", "dataset": "x", "kind": "lesion", "malignancy": "malignant", "strict": "B"},
        {**LESION, "id": "3", "dataset": "x", "kind": "lesion", "malignancy": "precancerous in situ",
         "strict": None},
        {**LESION, "id": "4", "dataset": "x", "kind": "lesion", "malignancy": "benign", "strict": "A"},
        {"id": "5", "dataset": "x", "kind": "disease", "malignancy": "malignant", "strict": "B",
         "letters": ["A", "B"], "options": ["melanoma", "nevus"]},
    ]  # fmt: skip
    m = missed_malignancy(recs, condition, seed=0, n_boot=200)
    assert (m["value"], m["n"], m["no_call"], m["informative"]) == (0.5, 4, 1, False)
    assert condition_confusion(recs, condition) == {
        "benign": {"benign": 1}, "malignant": {"benign": 2, "malignant": 1},
        "precancerous in situ": {"invalid": 1},
    }  # fmt: skip


def test_skin_type_accuracy_and_gap():
    recs = [{"dataset": "d", "skin_type": 2, "correct": i < 30} for i in range(40)]
    recs += [{"dataset": "d", "skin_type": 5, "correct": i < 15} for i in range(30)]
    recs += [{"dataset": "d", "skin_type": 6, "correct": False} for _ in range(3)]
    recs += [{"dataset": "d", "skin_type": None, "correct": True}]
    out = skin_type_accuracy(recs, seed=0, n_boot=2000)
    assert {t: (v["value"], v["n"]) for t, v in out["per_type"].items()} == {
        2: (0.75, 40), 5: (0.5, 30), 6: (0.0, 3)}  # fmt: skip
    assert out["unknown"] == 1
    gap = out["gap"]
    assert (gap["best"], gap["worst"], gap["n"]) == (2, 5, 70)
    assert gap["value"] == pytest.approx(0.25)
    assert gap["ci_low"] < 0.25 < gap["ci_high"]


def test_trust_of_and_headline_on_hand_made_records():
    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy
    from skinr1.trust import TrustKnowledge, headline, trust_of

    tax = load_taxonomy()
    kb = TrustKnowledge(tax, load_rules(tax), VOCAB, "rules")
    base = {"model": "m", "letters": ["A", "B"], "options": ["melanoma", "melanocytic nevus"],
            "node": "melanoma", "malignancy": "malignant", "answer": "A"}  # fmt: skip
    veil = (
        "<thinking>Black colour; blue-white veil.</thinking> <final diagnosis>{}</final diagnosis>"
    )
    recs = [
        {**base, "id": "1", "set": "disease", "kind": "disease", "dataset": "x", "skin_type": 2,
         "response": veil.format("A"), "strict": "A", "correct": True,
         "option_probs": {"probs": {"A": 0.8, "B": 0.2}, "mass": 0.9}},
        {**base, "id": "2", "set": "disease", "kind": "disease", "dataset": "x", "skin_type": 2,
         "response": veil.format("B"), "strict": "B", "correct": False,
         "option_probs": {"probs": {"A": 0.4, "B": 0.6}, "mass": 0.9}},
        {**base, "id": "3", "set": "disease", "kind": "disease", "dataset": "x", "skin_type": None,
         "response": "melanoma", "strict": None, "correct": False, "option_probs": None},
    ]  # fmt: skip
    sets = trust_of(recs, kb, seed=0, n_boot=200)
    d = sets["disease"]["m"]
    # melanoma's rule lists black and the veil: both stated features are shown, 2 of its 10 keys
    assert d["faithfulness"]["precision"]["value"] == 1.0
    assert d["faithfulness"]["recall"]["value"] == pytest.approx(2 / 10)
    assert d["faithfulness"]["not_scored"] == {"no thinking": 1}
    # answer 1 supports melanoma; answer 2 chose the nevus, whose rule has neither feature
    assert d["faithfulness"]["supports"]["value"] == 0.5
    assert d["calibration"]["not_scored"] == 1
    assert d["calibration"]["ece"]["value"] == pytest.approx((0.2 + 0.6) / 2)
    assert (d["calibration"]["coverage_at_90"], d["calibration"]["threshold_90"]) == (0.5, 0.8)
    # of 3 melanomas: one called malignant, one benign (the nevus), one no call
    assert d["missed_malignancy"]["value"] == pytest.approx(1 / 3)
    assert d["missed_malignancy"]["no_call"] == 1
    h = headline(sets)["m"]
    assert h["skin_type_acc"] == {"2": 0.5} and math.isnan(h["skin_type_gap"])
    assert h["malignant_missed_rate"] == pytest.approx(1 / 3)


def test_compare_runs_pairs_the_same_questions():
    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy
    from skinr1.trust import TrustKnowledge, compare_runs

    tax = load_taxonomy()
    kb = TrustKnowledge(tax, load_rules(tax), VOCAB, "rules")
    fd = "<thinking>{}</thinking> <final diagnosis>A</final diagnosis>"

    def rec(i, thinking, correct):
        return {"id": str(i), "model": "m", "set": "disease", "dataset": "x", "node": "melanoma",
                "letters": ["A", "B"], "options": ["melanoma", "melanocytic nevus"],
                "response": fd.format(thinking), "strict": "A", "correct": correct}  # fmt: skip

    a = [rec(1, "Black colour.", True), rec(2, "Black, pink.", True), rec(3, "Pink.", False)]
    b = [rec(1, "Pink.", False), rec(2, "Black colour.", True), rec(4, "Black.", True)]
    d = compare_runs(a, b, kb, model="m", seed=0, n_boot=500)
    # shared questions 1 and 2: accuracy 2/2 against 1/2
    assert (d["accuracy"]["value"], d["accuracy"]["n"]) == (0.5, 2)
    assert (d["accuracy"]["a"], d["accuracy"]["b"]) == (1.0, 0.5)
    # precision: a = (1, 1/2), b = (0, 1) -> differences +1 and -1/2
    assert d["precision"]["value"] == pytest.approx(0.25)
    assert (d["precision"]["a"], d["precision"]["b"]) == (0.75, 0.5)
    with pytest.raises(ValueError, match="share no disease question"):
        compare_runs(a, [], kb, model="m", seed=0)


def test_risk_coverage_figure_holds_each_risk_up_to_its_coverage():
    import matplotlib

    matplotlib.use("Agg")
    from skinr1.figures import draw_risk_coverage

    rc = risk_coverage([0.9, 0.8, 0.8, 0.3], [True, True, False, True])
    ax = draw_risk_coverage({"m": rc["points"]}, target=0.9)
    line = ax.lines[0]
    assert line.get_drawstyle() == "steps-pre"
    assert list(line.get_xdata()) == [0, 0.25, 0.75, 1.0]
    assert list(line.get_ydata()) == pytest.approx([0.0, 0.0, 1 / 3, 0.25])
