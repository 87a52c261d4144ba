"""The option swap: each question asked again with another label's options."""

import pytest

from skinr1.option_swap import final_text, option_dependence, swapped


def _row(i, node, options):
    letters = list("ABCD")[: len(options)]
    q = "What type of abnormality is present in this image? " + " ".join(
        f"{k}: {v}" for k, v in zip(letters, options, strict=True)
    )
    return {"id": f"q{i}", "node": node, "dataset": "HAM10000" if i % 2 else "derm7pt",
            "letters": letters, "options": options, "question": q, "answer": "A",
            "image": f"img{i}.jpg", "path": [node]}  # fmt: skip


ROWS = [
    _row(0, "melanoma", ["melanoma", "dermatofibroma", "vascular lesion", "actinic keratosis"]),
    _row(1, "melanoma", ["melanoma", "basal cell carcinoma", "measles", "acne"]),
    _row(2, "melanocytic nevus", ["melanocytic nevus", "melanoma", "psoriasis", "wart"]),
    _row(3, "dermatofibroma", ["dermatofibroma", "scabies", "lentigo", "melanoma"]),
]


def test_swapped_takes_the_options_of_a_question_with_another_label_and_keeps_the_rest():
    out = swapped(ROWS, seed=3)
    assert [r["id"] for r in out] == ["q0", "q1", "q2", "q3"]
    by_id = {r["id"]: r for r in ROWS}
    for r, new in zip(ROWS, out, strict=True):
        donor = by_id[new["swapped_from"]]
        assert donor["node"] != r["node"]
        assert (new["options"], new["letters"], new["question"], new["answer"]) == (
            donor["options"], donor["letters"], donor["question"], donor["answer"])  # fmt: skip
        assert (new["image"], new["node"], new["path"]) == (r["image"], r["node"], r["path"])
    assert swapped(ROWS, seed=3) == out
    assert [r["swapped_from"] for r in swapped(ROWS, seed=4)] != [r["swapped_from"] for r in out]


def test_swapped_needs_two_labels():
    with pytest.raises(ValueError, match="at least two labels"):
        swapped(ROWS[:2], seed=0)


def test_final_text_reads_exactly_one_block():
    assert final_text("<thinking>x</thinking> <final diagnosis> Melanoma, malignant</final "
                      "diagnosis>") == "melanoma, malignant"  # fmt: skip
    assert (
        final_text("<final diagnosis>a</final diagnosis><final diagnosis>b</final diagnosis>")
        is None
    )
    assert final_text("melanoma") is None


def _rec(i, text, invalid, dataset="HAM10000"):
    return {"id": f"q{i}", "dataset": dataset, "invalid": invalid,
            "response": f"<thinking>t</thinking> <final diagnosis>{text}</final diagnosis>"}  # fmt: skip


def test_option_dependence_counts_a_model_that_names_the_same_thing_whatever_is_offered():
    before = [_rec(i, "melanoma", False) for i in range(8)] + [_rec(8, "wart", True),
                                                              _rec(9, "acne", False)]  # fmt: skip
    after = [_rec(i, "melanoma", True) for i in range(6)] + [
        _rec(6, "dermatofibroma", False), _rec(7, "lentigo", False), _rec(8, "wart", True),
        _rec(9, "psoriasis", False)]  # fmt: skip
    d = option_dependence(before, after, seed=0, n_boot=200)
    assert d["n"] == 10
    assert d["offered_original"]["value"] == pytest.approx(0.9)
    assert d["offered_swapped"]["value"] == pytest.approx(0.3)
    assert d["unchanged"]["value"] == pytest.approx(0.7)  # q0-q5 and q8
    assert d["offered_change"]["value"] == pytest.approx(-0.6)
    assert d["offered_change"]["ci_high"] < 0 and d["offered_change"]["p_value"] < 0.05


def test_option_dependence_refuses_unpaired_records():
    with pytest.raises(ValueError, match="same questions"):
        option_dependence([_rec(0, "a", False)], [], seed=0)
    with pytest.raises(ValueError, match="'q0' is paired with 'q1'"):
        option_dependence([_rec(0, "a", False)], [_rec(1, "a", False)], seed=0)
