"""SkinRationale synthesis (Appendix B): exact texts, the image-label invariant, fallbacks.

Exact-value tests run on a small knowledge base written to tmp_path, so they do not move when
the real knowledge files grow; one smoke test runs the real files for invariants only.
"""

from __future__ import annotations

import json
import random
import re
import sys
import types

import pytest
import yaml
from PIL import Image

from skinr1.datasets.base import TextbookCase
from skinr1.ddx import DDxGraph, load_ddx, resolve_ddx_neighbor
from skinr1.prompts import SFT_TYPE1, SFT_TYPE23
from skinr1.rules import load_rules
from skinr1.taxonomy import load_taxonomy
from skinr1.trajectories import (
    ComparatorError,
    OpenAIComparator,
    TemplateComparator,
    hierarchy_text,
    save_skinrationale,
    synthesize,
    to_sft_dataset,
)

TAXONOMY = {
    "root": "skin lesion",
    "nodes": [
        {"name": "melanoma", "malignancy": "malignant"},
        {"name": "superficial spreading melanoma", "parent": "melanoma", "malignancy": "malignant"},
        {"name": "nodular melanoma", "parent": "melanoma", "malignancy": "malignant"},
        {"name": "lentigo maligna melanoma", "parent": "melanoma", "malignancy": "malignant"},
        {"name": "melanocytic nevus", "malignancy": "benign"},
        {"name": "benign keratosis-like lesion", "malignancy": "benign"},
        {"name": "seborrheic keratosis", "parent": "benign keratosis-like lesion",
         "malignancy": "benign"},
        {"name": "squamous cell carcinoma", "malignancy": "malignant"},
        {"name": "bowen disease", "parent": "squamous cell carcinoma", "malignancy": "malignant"},
        {"name": "bowen disease of the nail unit", "parent": "bowen disease",
         "malignancy": "malignant"},
        {"name": "actinic keratosis", "malignancy": "precancerous in situ"},
        {"name": "dermatofibroma", "malignancy": "benign"},
    ],
}  # fmt: skip
NEV_MEL = (
    "nevus is symmetric with a regular network; melanoma is asymmetric with an atypical network"
)
DDX = {
    "edges": [
        {"a": "melanocytic nevus", "b": "melanoma", "features": NEV_MEL},
        {"a": "seborrheic keratosis", "b": "melanoma",
         "features": "seborrheic keratosis is waxy with milia-like cysts; melanoma is not"},
        {"a": "actinic keratosis", "b": "bowen disease of the nail unit",
         "features": "actinic keratosis is on sun-damaged skin; bowen disease of the nail unit is "
                     "periungual"},
    ]
}  # fmt: skip
FEATURES = {
    "symmetry": ["symmetric", "asymmetric"],
    "border": ["regular", "irregular", "ill-defined"],
    "elevation": ["flat", "raised", "nodular"],
    "size": ["small", "medium", "large"],
    "colours": ["light brown", "dark brown", "black", "blue-grey", "red", "pink", "tan"],
    "structures": ["typical pigment network", "atypical pigment network", "blue-white veil",
                   "milia-like cysts", "comedo-like openings", "strawberry pattern", "scale"],
    "surface": ["waxy", "scaly"],
}  # fmt: skip
R_NEV = "Presence of a symmetric brown lesion with a typical pigment network indicates melanocytic nevus."
R_MEL = "Presence of an asymmetric lesion with black and blue-grey colours and a blue-white veil indicates melanoma."
R_SK = "Presence of a rough surface and stuck-on appearance indicates seborrheic keratosis."
R_AK = "Presence of a red scaly patch with a strawberry pattern indicates actinic keratosis."
RULES = {
    "melanocytic nevus": {"rule": R_NEV, "features": {
        "symmetry": "symmetric", "colours": ["light brown", "dark brown"],
        "structures": ["typical pigment network"]}},
    "melanoma": {"rule": R_MEL, "features": {
        "symmetry": "asymmetric", "border": "irregular",
        "colours": ["dark brown", "black", "blue-grey"],
        "structures": ["atypical pigment network", "blue-white veil"]}},
    "benign keratosis-like lesion": {"rule": R_SK, "features": {
        "elevation": "raised", "colours": ["light brown", "tan"],
        "structures": ["milia-like cysts", "comedo-like openings"], "surface": ["waxy"]}},
    "actinic keratosis": {"rule": R_AK, "features": {
        "border": "ill-defined", "colours": ["red", "pink"],
        "structures": ["strawberry pattern", "scale"], "surface": ["scaly"]}},
}  # fmt: skip


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    d = tmp_path_factory.mktemp("kb")
    for name, body in [("taxonomy", TAXONOMY), ("datasets", {}), ("ddx", DDX),
                       ("features", FEATURES), ("rules", RULES)]:  # fmt: skip
        (d / f"{name}.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    tax = load_taxonomy(d / "taxonomy.yaml", d / "datasets.yaml")
    ddx = load_ddx(tax, d / "ddx.yaml")
    rules = load_rules(tax, d / "rules.yaml", d / "features.yaml")
    return tax, ddx, rules


@pytest.fixture
def make_case(tmp_path):
    """A TextbookCase with a real PNG; the colour encodes the case number."""
    counter = iter(range(10_000))

    def make(case_id: str, diagnosis: str, rationale: str | None = None) -> TextbookCase:
        n = next(counter)
        path = tmp_path / f"{case_id}.png"
        Image.new("RGB", (16, 16), (n % 256, 40, 90)).save(path)
        text = rationale if rationale is not None else f"Presence of X indicates {diagnosis}."
        return TextbookCase(case_id, str(path), text, diagnosis)

    return make


def _run(kb, cases, **kw):
    tax, ddx, rules = kb
    kw.setdefault("seed", 0)
    return synthesize(cases, tax, ddx, rules, TemplateComparator(tax, ddx, rules), **kw)


# --- hierarchical completion ------------------------------------------------------------------
def test_hierarchy_text_matches_the_paper_examples(kb):
    tax = kb[0]
    assert hierarchy_text("seborrheic keratosis", tax) == (
        "Seborrheic keratosis is a subtype of benign keratosis-like lesion, and is generally "
        "classified as benign."
    )
    # Type 2 example: two ancestors, nearest first.
    assert hierarchy_text("bowen disease of the nail unit", tax) == (
        "Bowen disease of the nail unit is a subtype of bowen disease, and squamous cell "
        "carcinoma, and is generally classified as malignant."
    )
    # Type 3 example: a top-level node has no subtype clause.
    assert hierarchy_text("melanoma", tax) == "Melanoma is generally classified as malignant."
    assert hierarchy_text("actinic keratosis", tax) == (
        "Actinic keratosis is generally classified as precancerous in situ."
    )


def test_hierarchy_text_siblings_option(kb):
    tax = kb[0]
    assert hierarchy_text("superficial spreading melanoma", tax, siblings=True) == (
        "Superficial spreading melanoma is a subtype of melanoma, and is generally classified "
        "as malignant. Other subtypes of melanoma include nodular melanoma and lentigo maligna "
        "melanoma."
    )
    # Top-level nodes get no sibling sentence (their siblings are every other category).
    assert hierarchy_text("melanoma", tax, siblings=True) == (
        "Melanoma is generally classified as malignant."
    )


# --- exact trajectories, one per type ---------------------------------------------------------
RHO_KEEP_NEVUS = (
    "The lesion shows typical pigment network, light brown colour and symmetric shape, "
    "consistent with melanocytic nevus. In contrast, the features typical of melanoma, such as "
    "atypical pigment network, blue-white veil and black colour, are absent. Both can show dark "
    f"brown colour, so these do not discriminate. Distinguishing features: {NEV_MEL}."
)
RHO_REVISE_TO_MELANOMA = (
    "The lesion shows atypical pigment network, blue-white veil and black colour, consistent "
    "with melanoma. In contrast, the features typical of melanocytic nevus, such as typical "
    "pigment network, light brown colour and symmetric shape, are absent. Both can show dark "
    f"brown colour, so these do not discriminate. Distinguishing features: {NEV_MEL}."
)


def test_template_comparator_exact(kb):
    tax, ddx, rules = kb
    comp = TemplateComparator(tax, ddx, rules)
    kw = {"primary": "melanocytic nevus", "differential": "melanoma"}
    assert comp(R_NEV, R_MEL, "melanocytic nevus", **kw) == RHO_KEEP_NEVUS
    assert comp(R_NEV, R_MEL, "melanoma", **kw) == RHO_REVISE_TO_MELANOMA
    with pytest.raises(ValueError, match="must be the primary"):
        comp(R_NEV, R_MEL, "dermatofibroma", **kw)


def test_template_comparator_uses_ancestor_edge_and_rule(kb):
    """SSM has no edge and no rule: melanoma's edge and rule stand in (Algorithm 4 pairs it via
    the parent), so the text equals the melanoma comparison."""
    tax, ddx, rules = kb
    comp = TemplateComparator(tax, ddx, rules)
    text = comp("r", "s", "melanocytic nevus", primary="melanocytic nevus",
                differential="superficial spreading melanoma")  # fmt: skip
    assert text == RHO_KEEP_NEVUS.replace(
        "features typical of melanoma", "features typical of superficial spreading melanoma"
    )


def test_template_comparator_without_rule_falls_back_and_counts(kb):
    tax, ddx, rules = kb
    comp = TemplateComparator(tax, ddx, rules)
    text = comp("r", "s", "dermatofibroma", primary="dermatofibroma", differential="melanoma")
    assert text == "The visible clinical features better fit dermatofibroma than melanoma."
    assert comp.stats == {"missing_rules": {"dermatofibroma": 1}}


def test_type1_exact(kb, make_case):
    case = make_case("sk1", "seborrheic keratosis", R_SK)
    (tr,), report = _run(kb, [case], types=(1,))
    assert tr.response == (
        "<thinking>Presence of a rough surface and stuck-on appearance indicates seborrheic "
        "keratosis.</thinking> <diagnosis>seborrheic keratosis, Seborrheic keratosis is a subtype "
        "of benign keratosis-like lesion, and is generally classified as benign.</diagnosis>"
    )
    assert (tr.id, tr.type, tr.image, tr.prompt) == ("t1-sk1", 1, case.image, SFT_TYPE1)
    assert (tr.primary, tr.differential, tr.final) == ("seborrheic keratosis", None,
                                                       "seborrheic keratosis")  # fmt: skip
    assert tr.path == ("benign keratosis-like lesion", "seborrheic keratosis")
    assert tr.malignancy == "benign"
    assert tr.rationale == R_SK
    assert report["counts"] == {1: 1}


def test_type2_exact(kb, make_case):
    nev = make_case("nev1", "melanocytic nevus", R_NEV)
    mel = make_case("mel1", "melanoma", R_MEL)
    trs, report = _run(kb, [nev, mel], types=(2,))
    tr = trs[0]
    assert tr.response == (
        f"<thinking> Based on the rule: {R_NEV} We can give a primary diagnosis that "
        "melanocytic nevus. Considering the differential diagnosis for melanocytic nevus, namely "
        f"melanoma, we compare against the diagnostic rule for melanoma: {R_MEL} "
        f'{RHO_KEEP_NEVUS} Therefore, the most likely condition corresponds to "melanocytic '
        'nevus". </thinking> <diagnosis>melanocytic nevus. Melanocytic nevus is generally '
        "classified as benign.</diagnosis>"
    )
    assert (tr.id, tr.prompt, tr.image, tr.image_case) == (
        "t2-nev1-vs-mel1",
        SFT_TYPE23,
        nev.image,
        "nev1",
    )
    assert (tr.primary, tr.differential, tr.final) == ("melanocytic nevus", "melanoma",
                                                       "melanocytic nevus")  # fmt: skip
    assert (tr.differential_case, tr.ddx_source, tr.label_mismatch) == ("mel1", "graph", False)
    assert tr.path == ("melanocytic nevus",) and tr.malignancy == "benign"
    assert tr.response.startswith(f"<thinking> {tr.rationale} </thinking> <diagnosis>")
    assert report["counts"] == {2: 2}
    assert report["fallbacks"] == {2: {"graph": 2, "alg4_none": 0, "on_path_rejected": 0,
                                       "random": 0}}  # fmt: skip


def test_type3_exact_pairs_the_differential_image(kb, make_case):
    nev = make_case("nev1", "melanocytic nevus", R_NEV)
    mel = make_case("mel1", "melanoma", R_MEL)
    trs, report = _run(kb, [nev, mel], types=(3,))
    tr = trs[0]
    assert tr.response == (
        f"<thinking> Based on the rule: {R_NEV} We can give a primary diagnosis that "
        "melanocytic nevus. Considering the differential diagnosis for melanocytic nevus, namely "
        f"melanoma, we compare against the diagnostic rule for melanoma: {R_MEL} "
        f"{RHO_REVISE_TO_MELANOMA} Therefore, the most likely condition corresponds to "
        '"melanoma". </thinking> <diagnosis>melanoma. Melanoma is generally classified as '
        "malignant.</diagnosis>"
    )
    # The revision to melanoma is trained on the melanoma case's image, not the nevus image.
    assert (tr.id, tr.image, tr.image_case, tr.image_label) == (
        "t3-nev1-vs-mel1",
        mel.image,
        "mel1",
        "melanoma",
    )
    assert (tr.primary, tr.differential, tr.final) == ("melanocytic nevus", "melanoma",
                                                       "melanoma")  # fmt: skip
    assert tr.path == ("melanoma",) and tr.malignancy == "malignant"
    assert report["label_mismatch"] == 0 and "warning" not in report


def test_type3_primary_image_ablation_is_flagged(kb, make_case):
    nev = make_case("nev1", "melanocytic nevus", R_NEV)
    mel = make_case("mel1", "melanoma", R_MEL)
    trs, report = _run(kb, [nev, mel], types=(3,), type3_image="primary")
    tr = trs[0]
    assert (tr.image, tr.image_label, tr.final, tr.label_mismatch) == (
        nev.image,
        "melanocytic nevus",
        "melanoma",
        True,
    )
    assert report["label_mismatch"] == 2 and report["type3_image"] == "primary"
    assert "not its label" in report["warning"]
    # Type 2 never mismatches, whatever the Type 3 setting.
    trs2, _ = _run(kb, [nev, mel], types=(2,), type3_image="primary")
    assert not any(t.label_mismatch for t in trs2)


# --- the invariant, well-formedness and determinism over a generated set ----------------------
@pytest.fixture
def many_cases(make_case):
    nodes = ["melanoma", "superficial spreading melanoma", "nodular melanoma", "melanocytic nevus",
             "seborrheic keratosis", "bowen disease of the nail unit", "actinic keratosis",
             "dermatofibroma"]  # fmt: skip
    return [make_case(f"n{j}c{i}", n) for j, n in enumerate(nodes) for i in range(3)]


RESPONSE = re.compile(r"<thinking>(.+)</thinking> <diagnosis>(.+)</diagnosis>", re.S)


def test_every_trajectory_is_paired_with_an_image_of_its_final_diagnosis(kb, many_cases):
    trs, report = _run(kb, many_cases, per_case={1: 1, 2: 2, 3: 2}, seed=7)
    true_label = {c.image: c.diagnosis for c in many_cases}  # independent of the records
    case_label = {c.id: c.diagnosis for c in many_cases}
    assert len(trs) == report["counts"][1] + report["counts"][2] + report["counts"][3]
    for t in (2, 3):  # every one of the 24 x 2 draws is a trajectory or a counted skip
        skipped = sum(s["type"] == t for s in report["skips"])
        assert report["counts"][t] + skipped == 48
    assert report["counts"][1] == 24
    for tr in trs:
        assert true_label[tr.image] == tr.final, tr.id
        assert case_label[tr.image_case] == tr.final, tr.id
        assert not tr.label_mismatch
        if tr.type == 2:
            assert tr.final == tr.primary != tr.differential
        if tr.type == 3:
            assert tr.final == tr.differential != tr.primary
            assert tr.image_case == tr.differential_case
        if tr.type != 1:  # a differential is an alternative, never on the primary's path
            assert tr.differential not in kb[0].path(tr.primary)
            assert tr.primary not in kb[0].path(tr.differential)
        m = RESPONSE.fullmatch(tr.response)
        assert m, tr.response
        for tag in ("<thinking>", "</thinking>", "<diagnosis>", "</diagnosis>"):
            assert tr.response.count(tag) == 1, (tr.id, tag)
        sep = "," if tr.type == 1 else "."
        assert m.group(2).startswith(tr.final + sep + " "), tr.id
        assert m.group(1).strip() == tr.rationale
        assert tr.path[-1] == tr.final and tr.malignancy == kb[0].malignancy(tr.final)
    assert len({tr.id for tr in trs}) == len(trs)


def test_deterministic_per_seed_and_per_type(kb, many_cases):
    a, ra = _run(kb, many_cases, seed=3)
    b, rb = _run(kb, many_cases, seed=3)
    assert a == b and ra == rb
    c, _ = _run(kb, many_cases, seed=4)
    assert [t.id for t in a] != [t.id for t in c]  # the case draws differ between seeds
    # Each type draws from its own stream: dropping types 1 and 3 leaves Type 2 unchanged.
    only2, _ = _run(kb, many_cases, seed=3, types=(2,))
    assert only2 == [t for t in a if t.type == 2]


# --- Algorithm 4 branches (skinr1/ddx.py) and fallback counting -------------------------------
def _graph(*pairs):
    return DDxGraph({frozenset(p): f"{p[0]} vs {p[1]}" for p in pairs})


def test_alg4_direct_neighbour_with_cases(kb):
    g = _graph(("melanocytic nevus", "melanoma"))
    assert resolve_ddx_neighbor("melanocytic nevus", g, kb[0], {"melanoma"}) == "melanoma"


def test_alg4_node_absent_from_graph_uses_parent_neighbours(kb):
    g = _graph(("melanocytic nevus", "melanoma"))
    got = resolve_ddx_neighbor("nodular melanoma", g, kb[0], {"melanocytic nevus"})
    assert got == "melanocytic nevus"


def test_alg4_candidate_without_cases_descends_to_one_with_cases(kb):
    tax = kb[0]
    g = _graph(("melanocytic nevus", "melanoma"))
    assert resolve_ddx_neighbor("melanocytic nevus", g, tax, {"nodular melanoma"}) == (
        "nodular melanoma"
    )
    # Recursively: squamous cell carcinoma -> bowen disease -> bowen disease of the nail unit.
    g2 = _graph(("actinic keratosis", "squamous cell carcinoma"))
    assert (
        resolve_ddx_neighbor(
            "actinic keratosis", g2, tax, {"bowen disease of the nail unit"}, random.Random(0)
        )
        == "bowen disease of the nail unit"
    )


def test_alg4_nothing_returns_none(kb):
    tax = kb[0]
    g = _graph(("melanocytic nevus", "melanoma"))
    assert resolve_ddx_neighbor("melanocytic nevus", g, tax, {"dermatofibroma"}) is None
    assert resolve_ddx_neighbor("dermatofibroma", g, tax, {"melanoma"}) is None  # top level


def test_fallback_counts_when_alg4_returns_none(kb, make_case):
    cases = [make_case("df1", "dermatofibroma"), make_case("df2", "dermatofibroma"),
             make_case("nev1", "melanocytic nevus"), make_case("mel1", "melanoma")]  # fmt: skip
    trs, report = _run(kb, cases, types=(2, 3))
    # dermatofibroma is in no edge and top level: Algorithm 4 returns None for both df cases.
    expected = {"graph": 2, "alg4_none": 2, "on_path_rejected": 0, "random": 2}
    assert report["fallbacks"] == {2: expected, 3: expected}
    for tr in trs:
        source = "random" if tr.primary == "dermatofibroma" else "graph"
        assert tr.ddx_source == source, tr.id
        if tr.primary == "dermatofibroma":
            assert tr.differential in {"melanocytic nevus", "melanoma"}


def test_differential_on_the_primary_path_is_replaced(kb, make_case):
    tax, _, rules = kb
    ddx = _graph(("melanoma", "superficial spreading melanoma"))  # an ancestor-descendant edge
    cases = [make_case("mel1", "melanoma"), make_case("ssm1", "superficial spreading melanoma"),
             make_case("nev1", "melanocytic nevus")]  # fmt: skip
    trs, report = synthesize(cases, tax, ddx, rules, TemplateComparator(tax, ddx, rules),
                             seed=0, types=(2,))  # fmt: skip
    assert report["fallbacks"][2] == {"graph": 0, "alg4_none": 1, "on_path_rejected": 2,
                                      "random": 3}  # fmt: skip
    by_primary = {tr.primary: tr.differential for tr in trs}
    assert by_primary["melanoma"] == "melanocytic nevus"
    assert by_primary["superficial spreading melanoma"] == "melanocytic nevus"


# --- skips and bad input ----------------------------------------------------------------------
def test_skips_are_counted_with_reasons(kb, make_case, tmp_path):
    cases = [
        make_case("mel1", "melanoma"),
        make_case("ssm1", "superficial spreading melanoma"),
        make_case("unk1", "not a disease"),
        make_case("empty1", "melanoma", rationale="   "),
        TextbookCase("gone1", str(tmp_path / "missing.png"), "Presence of X.", "melanoma"),
    ]
    trs, report = _run(kb, cases, types=(1, 2))
    assert report["usable_cases"] == 2 and report["counts"] == {1: 2, 2: 0}
    assert report["skip_counts"] == {
        "diagnosis is not a taxonomy node": 1,
        "empty rationale": 1,
        "image file not found": 1,
        "no alternative diagnosis with cases off the primary's taxonomy path": 2,
    }
    assert {(s["case"], s["type"]) for s in report["skips"]} == {
        ("unk1", None),
        ("empty1", None),
        ("gone1", None),
        ("mel1", 2),
        ("ssm1", 2),
    }


def test_duplicate_pairs_are_skipped_and_counted(kb, make_case):
    cases = [make_case("nev1", "melanocytic nevus", R_NEV), make_case("mel1", "melanoma", R_MEL)]
    trs, report = _run(kb, cases, types=(2,), per_case={2: 3})
    assert [t.id for t in trs] == ["t2-nev1-vs-mel1", "t2-mel1-vs-nev1"]
    assert report["skip_counts"] == {"duplicate pair": 4}


def test_bad_input_raises_with_the_fix(kb, make_case):
    a = make_case("a", "melanoma")
    with pytest.raises(ValueError, match="duplicate case id 'a'"):
        _run(kb, [a, a])
    clash = TextbookCase("b", a.image, "Presence of Y.", "melanocytic nevus")
    with pytest.raises(ValueError, match="share image .* one image needs one label"):
        _run(kb, [a, clash])
    with pytest.raises(ValueError, match="type3_image must be one of"):
        _run(kb, [a], type3_image="both")
    with pytest.raises(ValueError, match="types must be distinct values"):
        _run(kb, [a], types=(1, 4))
    with pytest.raises(ValueError, match="per_case must map types"):
        _run(kb, [a], types=(1,), per_case={2: 1})
    with pytest.raises(ValueError, match="per_case must map types"):
        _run(kb, [a], per_case={1: -1})


# --- OpenAI comparator: key, package and cache (no network) -----------------------------------
ARGS = (R_NEV, R_MEL, "melanocytic nevus")
KW = {"primary": "melanocytic nevus", "differential": "melanoma"}


def test_openai_comparator_missing_key_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ComparatorError, match="OPENAI_API_KEY"):
        OpenAIComparator(cache_dir=tmp_path)(*ARGS, **KW)


def test_openai_comparator_missing_package_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "openai", None)  # makes `import openai` fail
    with pytest.raises(ComparatorError, match="pip install openai"):
        OpenAIComparator(cache_dir=tmp_path)(*ARGS, **KW)


def test_openai_comparator_caches_on_disk(tmp_path, monkeypatch):
    calls = []

    class FakeOpenAI:
        def __init__(self, api_key, base_url=None):
            calls.append({"api_key": api_key, "base_url": base_url})
            self.chat = types.SimpleNamespace(completions=types.SimpleNamespace(create=self.create))

        def create(self, **kw):
            calls.append(kw)
            msg = types.SimpleNamespace(
                content="<differential diagnosis reasoning> Typical  "
                "network present.</differential diagnosis reasoning>"
            )
            return types.SimpleNamespace(choices=[types.SimpleNamespace(message=msg)])

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(OpenAI=FakeOpenAI))
    comp = OpenAIComparator(cache_dir=tmp_path)
    assert comp(*ARGS, **KW) == "Typical network present."
    assert calls[0] == {"api_key": "sk-test", "base_url": None}
    assert (calls[1]["model"], calls[1]["temperature"], calls[1]["max_tokens"]) == (
        "gpt-4o-mini",
        0.2,
        120,
    )
    assert R_NEV in calls[1]["messages"][1]["content"]
    (entry,) = list(tmp_path.glob("*.json"))
    assert json.loads(entry.read_text())["response"] == "Typical network present."
    # A rerun reads the cache: no key, no package, no call, same text.
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setitem(sys.modules, "openai", None)
    again = OpenAIComparator(cache_dir=tmp_path)
    assert again(*ARGS, **KW) == "Typical network present."
    assert again.stats == {"api_calls": 0, "cache_hits": 1, "model": "gpt-4o-mini"}
    assert len(calls) == 2
    # The key is (model, prompt): another model or target misses the cache.
    with pytest.raises(ComparatorError, match="OPENAI_API_KEY"):
        OpenAIComparator(model="gpt-4o", cache_dir=tmp_path)(*ARGS, **KW)
    with pytest.raises(ComparatorError, match="OPENAI_API_KEY"):
        again(R_NEV, R_MEL, "melanoma", **KW)


# --- export -----------------------------------------------------------------------------------
def test_sft_dataset_is_trl_vision_prompt_completion(kb, make_case):
    from trl.data_utils import is_conversational, prepare_multimodal_messages

    nev = make_case("nev1", "melanocytic nevus", R_NEV)
    mel = make_case("mel1", "melanoma", R_MEL)
    trs, _ = _run(kb, [nev, mel], types=(1, 3))
    ds = to_sft_dataset(trs)
    assert ds.column_names == ["prompt", "completion", "images", "id", "type", "final", "primary",
                               "differential", "compact"]  # fmt: skip
    row = ds[2]  # t3-nev1-vs-mel1
    assert (row["id"], row["type"], row["final"], row["primary"], row["differential"]) == (
        "t3-nev1-vs-mel1",
        3,
        "melanoma",
        "melanocytic nevus",
        "melanoma",
    )
    assert ds[0]["differential"] is None
    (turn,) = row["prompt"]
    assert turn["role"] == "user" and turn["content"][0]["type"] == "image"
    assert turn["content"][1] == {"type": "text", "text": SFT_TYPE23}
    assert row["completion"] == [
        {"role": "assistant", "content": [{"type": "text", "text": trs[2].response}]}
    ]
    (img,) = row["images"]
    assert img.size == (16, 16) and img.getpixel((0, 0)) == Image.open(mel.image).getpixel((0, 0))
    # What SFTTrainer's vision collator does with a row: one placeholder, filled by the image.
    assert is_conversational(row)
    filled = prepare_multimodal_messages(row["prompt"], images=row["images"])
    assert filled[0]["content"][0]["image"] is row["images"][0]
    with pytest.raises(ValueError, match="no trajectories"):
        to_sft_dataset([])


def test_save_skinrationale_embeds_images_and_writes_jsonl(kb, make_case, tmp_path):
    import datasets

    cases = [make_case("nev1", "melanocytic nevus", R_NEV), make_case("mel1", "melanoma", R_MEL)]
    trs, report = _run(kb, cases)
    paths = save_skinrationale(trs, tmp_path / "out", report)
    for c in cases:  # the saved dataset must not depend on the source images
        (tmp_path / f"{c.id}.png").unlink()
    ds = datasets.load_from_disk(str(paths["dataset"]))
    assert len(ds) == 6 and ds[0]["images"][0].size == (16, 16)
    lines = paths["jsonl"].read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == [t.id for t in trs]
    first = json.loads(lines[0])
    assert first["path"] == ["melanocytic nevus"] and first["response"] == trs[0].response
    saved = json.loads(paths["report"].read_text())
    assert saved["counts"] == {"1": 2, "2": 2, "3": 2}


# --- the real knowledge files: invariants only (they grow concurrently) -----------------------
def test_real_knowledge_base_smoke(tmp_path):
    tax = load_taxonomy()
    ddx, rules = load_ddx(tax), load_rules(tax)
    cases = []
    for i, node in enumerate(tax.categories()):
        path = tmp_path / f"n{i}.png"
        Image.new("RGB", (8, 8)).save(path)
        cases.append(
            TextbookCase(
                f"n{i}",
                str(path),
                rules.rule_for(node, tax).text
                if node in rules
                else f"Presence of X indicates {node}.",
                node,
            )
        )
    comp = TemplateComparator(tax, ddx, rules)
    trs, report = synthesize(cases, tax, ddx, rules, comp, seed=0)
    label = {c.image: c.diagnosis for c in cases}
    assert report["counts"][1] == len(cases)
    assert all(label[t.image] == t.final for t in trs)
    assert all(RESPONSE.fullmatch(t.response) for t in trs)
    f = report["fallbacks"][2]
    no_alternative = sum(s["type"] == 2 for s in report["skips"])
    assert f["graph"] + f["random"] + no_alternative == len(cases)


# --- findings apart from rules, and the compact format ---------------------------------------
SEEN_NEV = "Dermoscopy of Fitzpatrick type II skin shows a symmetric brown lesion."
SEEN_MEL = "Dermoscopy of Fitzpatrick type V skin shows an asymmetric black lesion."


def test_split_rationale_separates_findings_from_the_rule():
    from skinr1.trajectories import split_rationale

    assert split_rationale(f"{SEEN_NEV}  {R_NEV}") == (SEEN_NEV, R_NEV)
    assert split_rationale(R_NEV) == ("", R_NEV)
    assert split_rationale("A firm papule. It dimples.") == ("A firm papule. It dimples.", "")


def test_type3_opens_with_the_shown_images_findings_and_quotes_both_rules(kb, make_case):
    nev = make_case("nev1", "melanocytic nevus", f"{SEEN_NEV} {R_NEV}")
    mel = make_case("mel1", "melanoma", f"{SEEN_MEL} {R_MEL}")
    trs, report = _run(kb, [nev, mel], types=(3,))
    tr = trs[0]  # revises nevus -> melanoma, trained on the melanoma image
    assert tr.image == mel.image and tr.findings == SEEN_MEL
    assert tr.rationale.startswith(f"{SEEN_MEL} Based on the rule: {R_NEV} We can give")
    assert f"the diagnostic rule for melanoma: {R_MEL} " in tr.rationale
    assert SEEN_NEV not in tr.rationale  # the other image's description is never quoted
    assert report["rule_sources"] == {"case": 4}
    assert tr.compact == (
        "<thinking>Asymmetric black lesion. Primary melanocytic nevus; versus melanoma, atypical "
        "pigment network and blue-white veil indicate melanoma.</thinking> <diagnosis>melanoma, "
        "malignant</diagnosis>"
    )
    keep = _run(kb, [nev, mel], types=(2,))[0][0]  # keeps nevus, on the nevus image
    assert keep.compact == (
        "<thinking>Symmetric brown lesion. Primary melanocytic nevus; versus melanoma, typical "
        "pigment network and light brown colour indicate melanocytic nevus.</thinking> "
        "<diagnosis>melanocytic nevus, benign</diagnosis>"
    )


def test_type1_compact_states_the_rule_and_the_hierarchy(kb, make_case):
    sk = make_case(
        "sk1", "seborrheic keratosis", f"A clinical photograph shows a waxy papule. {R_SK}"
    )
    (tr,), _ = _run(kb, [sk], types=(1,))
    # seborrheic keratosis has no rule of its own: its parent's features stand in
    assert tr.compact == (
        "<thinking>Waxy papule. Rule: milia-like cysts and comedo-like openings indicate "
        "seborrheic keratosis, a subtype of benign keratosis-like lesion.</thinking> "
        "<diagnosis>seborrheic keratosis, benign</diagnosis>"
    )
    assert tr.response.startswith(f"<thinking>A clinical photograph shows a waxy papule. {R_SK}")


def test_rules_quoted_fall_back_to_the_rule_book_then_the_rationale(kb, make_case):
    nev = make_case("nev1", "melanocytic nevus", "A symmetric brown lesion.")  # no rule sentence
    df = make_case("df1", "dermatofibroma", "A firm papule that dimples.")  # and no rule at all
    trs, report = _run(kb, [nev, df], types=(2,))
    by_primary = {t.primary: t for t in trs}
    assert f"Based on the rule: {R_NEV} " in by_primary["melanocytic nevus"].rationale
    assert (
        "Based on the rule: A firm papule that dimples. " in by_primary["dermatofibroma"].rationale
    )
    assert report["rule_sources"] == {"rule book": 2, "rationale": 2}
