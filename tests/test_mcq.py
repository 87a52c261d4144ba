"""Question sets from a small hand-made knowledge base (depth-3 path) written to tmp YAML."""

from __future__ import annotations

import random
from types import SimpleNamespace

import datasets
import pytest

from skinr1.datasets.base import Sample
from skinr1.ddx import load_ddx
from skinr1.mcq import (
    Question,
    build_question_set,
    ddx_question,
    disease_question,
    from_ood,
    hierarchical_question,
    lesion_question,
    row_features,
    sample_rng,
)
from skinr1.taxonomy import load_taxonomy

TAXONOMY_YAML = """\
root: skin lesion
nodes:
  - {name: melanocytic lesion, malignancy: benign}
  - {name: melanoma, parent: melanocytic lesion, malignancy: malignant}
  - {name: superficial spreading melanoma, parent: melanoma, malignancy: malignant}
  - {name: amelanotic ssm, parent: superficial spreading melanoma, malignancy: malignant}
  - {name: nodular melanoma, parent: melanoma, malignancy: malignant}
  - {name: melanocytic nevus, parent: melanocytic lesion, malignancy: benign}
  - {name: keratinocytic lesion, malignancy: benign}
  - {name: basal cell carcinoma, parent: keratinocytic lesion, malignancy: malignant}
  - {name: actinic keratosis, parent: keratinocytic lesion, malignancy: precancerous in situ}
  - {name: seborrheic keratosis, parent: keratinocytic lesion, malignancy: benign}
  - {name: vascular lesion, malignancy: benign}
"""
DATASETS_YAML = """\
DEMO:
  labels:
    ssm: superficial spreading melanoma
    nm: nodular melanoma
    nev: melanocytic nevus
    bcc: basal cell carcinoma
    ak: actinic keratosis
    vasc: vascular lesion
"""
DDX_YAML = """\
edges:
  - {a: superficial spreading melanoma, b: melanocytic nevus, features: f1}
  - {a: superficial spreading melanoma, b: seborrheic keratosis, features: f2}
  - {a: superficial spreading melanoma, b: amelanotic ssm, features: under the label}
  - {a: superficial spreading melanoma, b: melanocytic lesion, features: on the path}
  - {a: melanoma, b: vascular lesion, features: f3}
  - {a: melanoma, b: basal cell carcinoma, features: f4}
  - {a: melanoma, b: nodular melanoma, features: the label itself}
"""
SSM_PATH = ("melanocytic lesion", "melanoma", "superficial spreading melanoma")
# Nodes in DEMO's own label tree that are neither on SSM's path nor under it.
DEMO_OFF_PATH = {
    "nodular melanoma",
    "melanocytic nevus",
    "keratinocytic lesion",
    "basal cell carcinoma",
    "actinic keratosis",
    "vascular lesion",
}


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    d = tmp_path_factory.mktemp("kb")
    (d / "taxonomy.yaml").write_text(TAXONOMY_YAML)
    (d / "datasets.yaml").write_text(DATASETS_YAML)
    (d / "ddx.yaml").write_text(DDX_YAML)
    tax = load_taxonomy(d / "taxonomy.yaml", d / "datasets.yaml")
    return tax, load_ddx(tax, d / "ddx.yaml")


def make_sample(tax, node: str, sid: str = "s1", dataset: str = "DEMO") -> Sample:
    return Sample(
        id=sid,
        image=f"/data/{sid}.jpg",
        dataset=dataset,
        raw_label=node,
        node=node,
        path=tuple(tax.path(node)),
        malignancy=tax.malignancy(node),
        split="test",
    )


def on_path(q: Question) -> dict[str, float]:
    return {t: q.scores[k] for k, t in q.options.items() if t in SSM_PATH}


# --- disease questions ------------------------------------------------------------------------
def test_disease_question_structure_over_many_draws(kb):
    tax, _ = kb
    s = make_sample(tax, "superficial spreading melanoma")
    assert s.path == SSM_PATH
    for seed in range(300):
        q = disease_question(s, tax, random.Random(seed))
        texts = list(q.options.values())
        assert list(q.options) == ["A", "B", "C", "D"] and len(set(texts)) == 4
        correct = [t for t in texts if t in SSM_PATH]
        assert 1 <= len(correct) <= 3
        # never the label's descendant, the root, or anything off the tree
        assert "amelanotic ssm" not in texts and "skin lesion" not in texts
        depth = {n: i + 1 for i, n in enumerate(SSM_PATH)}
        assert q.options[q.answer] == max(correct, key=depth.get)
        for k, t in q.options.items():
            if t not in SSM_PATH:
                assert q.scores[k] == 0.0
        assert q.question.startswith("What type of abnormality is present in this image? A: ")
        assert q.missing_options == 0 and q.kind == "disease"


# w_i for path [a, b, c] (L = 3), for every subset of on-path options a question can hold:
# "path": 0.75 * i / 3 -> a 0.25, b 0.5, c 0.75 whatever was sampled.
# "sampled": 0.75 * i / i_max where i_max is the deepest sampled depth.
A, B, C = SSM_PATH
SAMPLED = {
    frozenset({A}): {A: 0.75},
    frozenset({B}): {B: 0.75},
    frozenset({C}): {C: 0.75},
    frozenset({A, B}): {A: 0.375, B: 0.75},
    frozenset({A, C}): {A: 0.25, C: 0.75},
    frozenset({B, C}): {B: 0.5, C: 0.75},
    frozenset({A, B, C}): {A: 0.25, B: 0.5, C: 0.75},
}
PATH_NORM = {A: 0.25, B: 0.5, C: 0.75}


@pytest.mark.parametrize("norm", ["sampled", "path", "finest"])
def test_granularity_values_by_norm(kb, norm):
    tax, _ = kb
    s = make_sample(tax, "superficial spreading melanoma")
    seen = set()
    for seed in range(300):
        q = disease_question(s, tax, random.Random(seed), granularity_norm=norm)
        got = on_path(q)
        subset = frozenset(got)
        seen.add(subset)
        if norm == "finest":
            want = {n: 0.75 if n == max(subset, key=SSM_PATH.index) else 0.0 for n in subset}
        elif norm == "sampled":
            want = SAMPLED[subset]
        else:
            want = {n: PATH_NORM[n] for n in subset}
        assert got == pytest.approx(want)
        if norm != "path":
            assert q.scores[q.answer] == 0.75
    # every subset of the path must actually occur, so the table above was exercised
    assert seen == set(SAMPLED)


def test_path_norm_answer_below_max_when_label_not_offered(kb):
    tax, _ = kb
    s = make_sample(tax, "superficial spreading melanoma")
    for seed in range(300):
        q = disease_question(s, tax, random.Random(seed), granularity_norm="path")
        if set(on_path(q)) == {A, B}:
            assert q.options[q.answer] == B and q.scores[q.answer] == pytest.approx(0.5)
            return
    pytest.fail("no draw offered exactly [a, b]")


def test_distractor_sources_follow_dataset_share(kb):
    tax, _ = kb
    s = make_sample(tax, "superficial spreading melanoma")
    from_dataset, from_global = set(), set()
    for seed in range(200):
        q = disease_question(s, tax, random.Random(seed), dataset_share=1.0)
        from_dataset |= {t for t in q.options.values() if t not in SSM_PATH}
        q = disease_question(s, tax, random.Random(seed), dataset_share=0.0)
        from_global |= {t for t in q.options.values() if t not in SSM_PATH}
    assert from_dataset == DEMO_OFF_PATH  # seborrheic keratosis is not a DEMO label
    assert from_global == DEMO_OFF_PATH | {"seborrheic keratosis"}


def test_too_few_distractors_gives_a_shorter_question(kb):
    tax, _ = kb
    s = make_sample(tax, "superficial spreading melanoma")
    # 11 nodes - 3 on the path - 1 under the label = 7 distractors at most, + 1 correct option
    q = disease_question(s, tax, random.Random(0), n_options=12, n_correct=(1, 1))
    assert list(q.options) == list("ABCDEFGH")
    assert q.missing_options == 4
    assert set(q.options.values()) - set(SSM_PATH) == DEMO_OFF_PATH | {"seborrheic keratosis"}


def test_top_level_label_is_its_only_correct_option(kb):
    tax, _ = kb
    s = make_sample(tax, "vascular lesion")
    for norm in ("sampled", "path", "finest"):
        q = disease_question(s, tax, random.Random(3), granularity_norm=norm)
        assert q.options[q.answer] == "vascular lesion"
        assert sorted(q.scores.values()) == [0.0, 0.0, 0.0, 0.75]


def test_disease_question_bad_arguments(kb):
    tax, _ = kb
    s = make_sample(tax, "melanoma")
    with pytest.raises(ValueError, match=r"granularity_norm.*'sampled', 'path', 'finest'.*'depth'"):
        disease_question(s, tax, random.Random(0), granularity_norm="depth")
    with pytest.raises(ValueError, match="n_correct"):
        disease_question(s, tax, random.Random(0), n_correct=(2, 1))
    with pytest.raises(ValueError, match="dataset_share"):
        disease_question(s, tax, random.Random(0), dataset_share=1.5)
    stale = Sample("x9", "/i.jpg", "DEMO", "?", "melanoma", ("melanoma",), "malignant", "test")
    with pytest.raises(ValueError, match="x9.*differs from the taxonomy"):
        disease_question(stale, tax, random.Random(0))
    unknown = Sample("x8", "/i.jpg", "DEMO", "?", "lupus", ("lupus",), "benign", "test")
    with pytest.raises(ValueError, match="x8.*'lupus' is not in taxonomy.yaml"):
        hierarchical_question(unknown, tax, random.Random(0))


# --- lesion, DDx, hierarchical, OOD -----------------------------------------------------------
def test_lesion_question(kb):
    tax, _ = kb
    q = lesion_question(make_sample(tax, "actinic keratosis"))
    assert q.options == {"A": "benign", "B": "malignant", "C": "precancerous in situ"}
    assert q.answer == "C" and q.scores == {"A": 0.0, "B": 0.0, "C": 1.0}
    assert q.question == (
        "What type of lesion condition (benign, malignant or precancerous in situ) is present in "
        "this image? A: benign B: malignant C: precancerous in situ"
    )
    assert lesion_question(make_sample(tax, "nodular melanoma")).answer == "B"


def test_ddx_question_uses_label_neighbours_only(kb):
    tax, ddx = kb
    s = make_sample(tax, "superficial spreading melanoma")
    for seed in range(20):
        q = ddx_question(s, tax, ddx, random.Random(seed))
        # amelanotic ssm (under the label) and melanocytic lesion (on the path) are excluded
        assert set(q.options.values()) == {C, "melanocytic nevus", "seborrheic keratosis"}
        assert q.options[q.answer] == C and q.scores[q.answer] == 0.75
        assert q.missing_options == 1 and q.kind == "ddx"


def test_ddx_question_falls_back_to_ancestor_and_skips(kb):
    tax, ddx = kb
    q = ddx_question(make_sample(tax, "nodular melanoma"), tax, ddx, random.Random(0))
    # nodular melanoma has no edge of its own; melanoma's neighbours minus the label itself
    assert set(q.options.values()) == {
        "nodular melanoma",
        "vascular lesion",
        "basal cell carcinoma",
    }
    assert q.options[q.answer] == "nodular melanoma"
    assert ddx_question(make_sample(tax, "actinic keratosis"), tax, ddx, random.Random(0)) is None


def test_hierarchical_question(kb):
    tax, _ = kb
    q = hierarchical_question(make_sample(tax, C), tax, random.Random(1))
    # the whole path, and the label's sibling as the fourth option
    assert set(q.options.values()) == {*SSM_PATH, "nodular melanoma"}
    assert q.options[q.answer] == C
    assert {t: q.scores[k] for k, t in q.options.items()} == pytest.approx(
        PATH_NORM | {"nodular melanoma": 0.0}
    )
    assert q.missing_options == 0
    # a two-level label: its sibling, then another descendant of its parent, never its own path
    for seed in range(20):
        q = hierarchical_question(make_sample(tax, "melanocytic nevus"), tax, random.Random(seed))
        texts = set(q.options.values())
        assert len(texts) == 4 and {"melanocytic lesion", "melanocytic nevus", "melanoma"} < texts
        assert texts - {"melanocytic lesion", "melanocytic nevus", "melanoma"} <= {
            "superficial spreading melanoma", "amelanotic ssm", "nodular melanoma"}  # fmt: skip
        assert q.options[q.answer] == "melanocytic nevus" and q.scores[q.answer] == 0.75
    # six options ask for more than the tree's level offers: the categories fill the rest
    q = hierarchical_question(
        make_sample(tax, "actinic keratosis"), tax, random.Random(0), n_options=6
    )
    assert len(q.options) == 6 and q.missing_options == 0
    assert hierarchical_question(make_sample(tax, "vascular lesion"), tax, random.Random(1)) is None


def test_from_ood():
    item = SimpleNamespace(
        id="omni-7",
        image="/omni/ISIC2019/x.jpg",
        source="ISIC2019",
        question="What is the diagnosis?",
        options={"A": "Nevus", "B": "Melanoma", "C": "Dermatofibroma"},
        answer="B",
        answer_text="Melanoma",
    )
    q = from_ood(item)
    assert q.kind == "ood" and q.answer == "B" and q.node == "Melanoma" and q.path == ()
    assert q.scores == {"A": 0.0, "B": 1.0, "C": 0.0}
    assert q.question == "What is the diagnosis? A: Nevus B: Melanoma C: Dermatofibroma"
    item.answer = "E"
    with pytest.raises(ValueError, match="omni-7"):
        from_ood(item)


# --- question sets and rows ---------------------------------------------------------------------
def test_build_question_set_deterministic_and_reports_skips(kb):
    tax, ddx = kb
    nodes = [C, "nodular melanoma", "actinic keratosis", "vascular lesion", "melanocytic nevus"]
    samples = [make_sample(tax, n, sid=f"s{i}") for i, n in enumerate(nodes)]
    rows = lambda qs: [q.to_row() for q in qs]  # noqa: E731
    qs1, rep1 = build_question_set(samples, "disease", tax, ddx, seed=7)
    qs2, _ = build_question_set(list(reversed(samples)), "disease", tax, ddx, seed=7)
    assert rows(qs1) == rows(reversed(qs2))  # per-sample rng: independent of order
    qs3, _ = build_question_set(samples, "disease", tax, ddx, seed=8)
    assert rows(qs1) != rows(qs3)
    assert rep1["questions"] == 5 and rep1["skipped"] == 0

    qs, rep = build_question_set(samples, "ddx", tax, ddx, seed=7)
    # edges are undirected: vascular lesion borrows nothing (melanoma is its own neighbour) and
    # melanocytic nevus has SSM; only actinic keratosis has no edge on its whole path
    assert rep["skipped_ids"] == ["s2"] and rep["skipped"] == 1
    assert rep["skip_reason"] == "no DDx-graph neighbour for the label or any ancestor"
    assert [q.id for q in qs] == ["s0", "s1", "s3", "s4"]
    assert [len(q.options) for q in qs] == [3, 3, 2, 2]
    assert rep["short_ids"] == ["s0", "s1", "s3", "s4"] and rep["short"] == 4

    _, rep = build_question_set(samples, "hierarchical", tax, ddx, seed=7)
    assert rep["skipped_ids"] == ["s3"]
    with pytest.raises(ValueError, match="kind must be one of"):
        build_question_set(samples, "ood", tax, ddx, seed=7)
    with pytest.raises(ValueError, match="DDxGraph"):
        build_question_set(samples, "ddx", tax, None, seed=7)


def test_sample_rng_is_stable():
    # SHA-256 based, so the same across processes (Python's hash() is salted per process)
    assert sample_rng(0, "ISIC_0000001").random() == sample_rng(0, "ISIC_0000001").random()
    assert sample_rng(0, "a").random() != sample_rng(1, "a").random()


def test_rows_build_a_hf_dataset(kb):
    tax, ddx = kb
    s = make_sample(tax, C)
    qs = [
        disease_question(s, tax, random.Random(0)),
        lesion_question(s),
        hierarchical_question(s, tax, random.Random(0)),
    ]
    ds = datasets.Dataset.from_list([q.to_row() for q in qs])
    assert ds.num_rows == 3
    for row, q in zip(ds, qs, strict=True):
        assert row["letters"] == list(q.options)
        assert row["options"] == list(q.options.values())
        assert row["scores"] == [q.scores[k] for k in q.options]
        assert row["answer"] == q.answer and row["path"] == list(SSM_PATH)
    ood = SimpleNamespace(
        id="o1", image="/x.jpg", source="ISIC2018", question="Q?", options={"A": "x", "B": "y"},
        answer="A", answer_text="x",
    )  # fmt: skip
    only_ood = datasets.Dataset.from_list([from_ood(ood).to_row()], features=row_features())
    assert only_ood[0]["path"] == [] and only_ood[0]["scores"] == [1.0, 0.0]


def test_deep_question_repeat_copies_only_questions_answered_below_a_category(kb):
    from skinr1.grpo import with_deep_repeated

    tax, _ = kb
    qs = [
        disease_question(make_sample(tax, node, sid), tax, random.Random(i), n_correct=(3, 3))
        for i, (node, sid) in enumerate(
            [("vascular lesion", "v"), ("superficial spreading melanoma", "s"), ("melanoma", "m")]
        )
    ]
    # every path node is offered, so the answer is the label itself
    assert [len(tax.path(q.options[q.answer])) for q in qs] == [1, 3, 2]
    assert with_deep_repeated(qs, tax, 1) == qs
    assert [q.id for q in with_deep_repeated(qs, tax, 3)] == ["v", "s", "m", "s", "m", "s", "m"]
    with pytest.raises(ValueError, match="grpo.deep_question_repeat = 0"):
        with_deep_repeated(qs, tax, 0)
