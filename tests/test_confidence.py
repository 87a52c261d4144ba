"""Option probabilities at the answer position: the prefix, the probability algebra by hand, and
the batched forward passes against a direct single-example computation on the tiny model."""

import math

import pytest

from skinr1.confidence import (
    answer_prefix,
    continuation_tokens,
    distribution,
    option_masses,
    option_probabilities,
    sequence_probabilities,
)


# --- the answer position --------------------------------------------------------------------------
def test_answer_prefix_cuts_at_the_first_final_diagnosis_tag():
    r = "<thinking>dark network</thinking> <final diagnosis>B: melanoma</final diagnosis>"
    assert answer_prefix(r) == "<thinking>dark network</thinking> <final diagnosis>"
    assert answer_prefix("<final diagnosis>melanoma, malignant</final diagnosis>") == (
        "<final diagnosis>"
    )
    two = "<thinking>x</thinking><final diagnosis>A</final diagnosis> <final diagnosis>B"
    assert answer_prefix(two) == "<thinking>x</thinking><final diagnosis>"


def test_answer_prefix_after_thinking_appends_the_tag_and_otherwise_is_none():
    assert answer_prefix("<thinking>regular</thinking> it is benign") == (
        "<thinking>regular</thinking> <final diagnosis>"
    )
    assert answer_prefix("<thinking>a</thinking> b </thinking>") == (
        "<thinking>a</thinking> <final diagnosis>"
    )
    assert answer_prefix("melanoma") is None
    assert answer_prefix("") is None
    assert answer_prefix("<thinking>never closed") is None


# --- the probability algebra ------------------------------------------------------------------------
MEL, MIS, BK = ("me", "lan", "oma"), ("me", "lan", "oma", " in", " situ"), ("b", "enign")


def test_option_masses_subtract_the_longer_option_text_and_normalise():
    names = [("A", ("A",)), ("A", MEL), ("B", ("B",)), ("B", MIS), ("C", ("C",)), ("C", BK)]
    probs = {("A",): 0.1, MEL: 0.3, ("B",): 0.2, MIS: 0.12, ("C",): 0.05, BK: 0.08}
    m = option_masses(names, probs)
    # "melanoma" is only the event "melanoma" not followed by " in situ": 0.3 - 0.12
    assert m == pytest.approx({"A": 0.1 + 0.18, "B": 0.2 + 0.12, "C": 0.05 + 0.08}, abs=1e-15)
    d = distribution(m)
    assert d["mass"] == pytest.approx(0.73, abs=1e-15)
    assert d["probs"] == pytest.approx({"A": 0.28 / 0.73, "B": 0.32 / 0.73, "C": 0.13 / 0.73})
    assert list(d["probs"]) == ["A", "B", "C"]
    assert math.fsum(d["probs"].values()) == pytest.approx(1, abs=1e-15)


def test_option_masses_subtract_a_chain_of_extensions_once_per_level():
    mis_face = (*MIS, " of", " the", " face")
    names = [("A", ("A",)), ("A", MEL), ("B", ("B",)), ("B", MIS), ("C", ("C",)), ("C", mis_face)]
    probs = {("A",): 0.0, ("B",): 0.0, ("C",): 0.0, MEL: 0.5, MIS: 0.3, mis_face: 0.1}
    # melanoma: 0.5 - 0.3 (not 0.5 - 0.3 - 0.1); in situ: 0.3 - 0.1; of the face: 0.1
    assert option_masses(names, probs) == pytest.approx({"A": 0.2, "B": 0.2, "C": 0.1}, abs=1e-15)


def test_option_masses_never_count_a_letter_and_a_text_twice():
    # letter B's token is the first token of option C's text: "B" excludes "B-cell lymphoma"
    bcell = ("B", "-cell", " lymphoma")
    names = [("A", ("A",)), ("A", MEL), ("B", ("B",)), ("B", BK), ("C", ("C",)), ("C", bcell)]
    probs = {("A",): 0.1, MEL: 0.0, ("B",): 0.3, BK: 0.05, ("C",): 0.02, bcell: 0.1}
    assert option_masses(names, probs) == pytest.approx(
        {"A": 0.1, "B": 0.2 + 0.05, "C": 0.02 + 0.1}, abs=1e-15
    )
    # an option whose text is its own letter: one sequence, counted once
    assert option_masses([("A", ("A",)), ("A", ("A",)), ("B", ("B",))],
                         {("A",): 0.4, ("B",): 0.1}) == {"A": 0.4, "B": 0.1}  # fmt: skip
    # one sequence naming two options names neither (still excluded from shorter ones)
    names = [("A", ("A",)), ("A", ("x",)), ("B", ("B",)), ("B", ("x",)), ("B", ("x", "y"))]
    probs = {("A",): 0.1, ("B",): 0.2, ("x",): 0.5, ("x", "y"): 0.4}
    assert option_masses(names, probs) == pytest.approx({"A": 0.1, "B": 0.2 + 0.4}, abs=1e-15)


def test_rounding_below_zero_clamps_and_nothing_named_is_not_scored():
    names = [("A", ("A",)), ("A", MEL), ("B", ("B",)), ("B", MIS)]
    probs = {("A",): 0.0, ("B",): 0.0, MEL: 0.25, MIS: 0.25 + 1e-17}
    assert option_masses(names, probs) == {"A": 0.0, "B": 0.25 + 1e-17}
    assert distribution({"A": 0.0, "B": 0.0}) is None
    with pytest.raises(ValueError, match="option A: a naming sequence with no tokens"):
        option_masses([("A", ())], {})


# --- the tiny model ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A randomly initialised tiny Qwen2.5-VL built offline, as tests/test_model.py builds it."""
    from skinr1.embedded.tiny_model import TinyConfig, build_tiny_model
    from skinr1.model import load_model, load_processor

    path = tmp_path_factory.mktemp("tiny")
    cfg = TinyConfig(vocab_size=600, hidden_size=64, num_layers=1, num_heads=2, num_kv_heads=1,
                     intermediate_size=128, vision_depth=1, vision_hidden=32, vision_heads=2,
                     image_size=56)  # fmt: skip
    build_tiny_model(path, cfg, seed=0)
    proc = load_processor(str(path), max_pixels=56 * 56, min_pixels=56 * 56)
    return load_model(str(path)).eval(), proc


@pytest.mark.slow
def test_continuation_tokens_fall_back_when_bpe_merges_across_the_boundary(tiny):
    tok = tiny[1].tokenizer

    def ids(s):
        return tok(s, add_special_tokens=False)["input_ids"]

    assert continuation_tokens(tok, "<final diagnosis>", "melanoma") == (ids("melanoma"), False)
    # "mel" is me|l, "melanoma" is me|lan|oma: the prefix's tokens would change
    assert ids("mel") != ids("melanoma")[:2]
    assert continuation_tokens(tok, "mel", "anoma") == (ids("anoma"), True)


def _rows(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(64, 64), (80, 60), (64, 64), (56, 70)]):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    disease = ["melanoma", "melanoma in situ", "benign keratosis", "basal cell carcinoma"]
    rows = [
        {"id": "q0", "kind": "disease", "image": paths[0], "letters": list("ABCD"),
         "options": disease, "question": "What type of abnormality is present in this image? "
         + " ".join(f"{k}: {v}" for k, v in zip("ABCD", disease, strict=True))},
        {"id": "q1", "kind": "lesion", "image": paths[1], "letters": list("ABC"),
         "options": ["benign", "malignant", "precancerous in situ"], "question": ""},
        {"id": "q2", "kind": "ood", "image": paths[2], "letters": ["A", "B"],
         "options": ["eczema", "psoriasis"], "question": "Which? A: eczema B: psoriasis"},
        {"id": "q3", "kind": "disease", "image": paths[3], "letters": list("ABC"),
         "options": ["nevus", "melanoma", "dermatofibroma"],
         "question": "What type of abnormality is present in this image? A: nevus B: melanoma "
         "C: dermatofibroma"},
    ]  # fmt: skip
    responses = [
        "<thinking>dark network</thinking> <final diagnosis>B: melanoma in situ</final diagnosis>",
        "<thinking>regular border</thinking> it is benign",  # only </thinking>
        "psoriasis, I think",  # no tags: not scored
        "<final diagnosis>A</final diagnosis> <final diagnosis>B</final diagnosis>",
    ]
    return rows, responses


def _direct(model, proc, row, response, continuation):
    """P(continuation | prompt, image, answer prefix) from one unpadded forward pass on the full
    text, the continuation's tokens as the processor tokenizes the whole string."""
    import torch
    from PIL import Image

    from skinr1.evaluation import prompt_for
    from skinr1.prompts import user_message

    chat = proc.apply_chat_template(user_message(prompt_for(row)), add_generation_prompt=True,
                                    tokenize=False)  # fmt: skip
    text = chat + answer_prefix(response)
    image = Image.open(row["image"]).convert("RGB")
    pre = proc(text=[text], images=[image], return_tensors="pt")["input_ids"][0].tolist()
    enc = proc(text=[text + continuation], images=[image], return_tensors="pt")
    ids = enc["input_ids"][0].tolist()
    assert ids[: len(pre)] == pre  # both answer tags are single tokens: no merge here
    with torch.no_grad():
        probs = model(**enc).logits[0].double().softmax(-1)
    cont = ids[len(pre) :]
    p = math.prod(probs[len(pre) - 1 + k, t].item() for k, t in enumerate(cont))
    return tuple(cont), p


@pytest.mark.slow
def test_batched_probabilities_match_a_direct_single_example_computation(tiny, tmp_path):
    model, proc = tiny
    rows, responses = _rows(tmp_path)
    seqs = sequence_probabilities(model, proc, rows, responses, batch_size=3)
    assert seqs[2] is None
    for row, response, s in zip(rows, responses, seqs, strict=True):
        if s is None:
            continue
        names = iter(s["names"])
        for letter, option in zip(row["letters"], row["options"], strict=True):
            for cont in (letter, option):
                seq, p = _direct(model, proc, row, response, cont)
                assert next(names) == (letter, seq)
                assert s["seq_probs"][seq] == pytest.approx(p, rel=1e-4, abs=1e-5)
    # q0 by hand: "melanoma" counts only where it does not go on into " in situ"
    s0 = seqs[0]
    a, mel, b, mis, c, bk, d, bcc = (s0["seq_probs"][seq] for _, seq in s0["names"])
    assert 0 < mis < mel  # "melanoma in situ" starts with "melanoma"'s tokens
    masses = {"A": a + mel - mis, "B": b + mis, "C": c + bk, "D": d + bcc}
    out = option_probabilities(model, proc, rows, responses, batch_size=3)
    assert out[0]["mass"] == pytest.approx(sum(masses.values()), rel=1e-12)
    assert out[0]["probs"] == pytest.approx(
        {k: v / sum(masses.values()) for k, v in masses.items()}, rel=1e-12
    )
    assert out[2] is None
    for o in (out[0], out[1], out[3]):
        assert set(o) == {"probs", "mass"}
        assert math.fsum(o["probs"].values()) == pytest.approx(1, abs=1e-6)
        assert 0 < o["mass"] <= 1
    assert list(out[1]["probs"]) == ["A", "B", "C"]


@pytest.mark.slow
def test_batch_size_does_not_change_the_probabilities(tiny, tmp_path):
    model, proc = tiny
    rows, responses = _rows(tmp_path)
    one = option_probabilities(model, proc, rows, responses, batch_size=1)
    three = option_probabilities(model, proc, rows, responses, batch_size=3)
    for x, y in zip(one, three, strict=True):
        if x is None:
            assert y is None
            continue
        assert y["mass"] == pytest.approx(x["mass"], rel=1e-5)
        assert y["probs"] == pytest.approx(x["probs"], abs=1e-5)
    assert model.training is False
