"""How SFT re-renders SkinRationale for the model being trained (prompt style, findings cut)."""

import re

import datasets
import pytest

from skinr1.sft import apply_prompt_style, findings_only

TYPE1 = (
    "<thinking>Dermoscopy of Fitzpatrick type V skin shows a symmetric flat lesion with ill-defined "
    "border; colours red, pink; scale. Presence of a red scaly patch indicates actinic keratosis."
    "</thinking> <diagnosis>actinic keratosis, Actinic keratosis is generally classified as "
    "precancerous in situ.</diagnosis>"
)
TYPE2 = (
    "<thinking>Based on the rule: Dermoscopy of Fitzpatrick type II skin shows a symmetric flat "
    "lesion with regular border; colours light brown, dark brown. First, consider melanoma. But "
    "the border is regular.</thinking> <diagnosis>dermal nevus. Dermal nevus is a subtype of "
    "melanocytic nevus, and is generally classified as benign.</diagnosis>"
)


def test_findings_only_keeps_the_first_sentence_and_the_diagnosis_with_its_condition():
    assert findings_only(TYPE1) == (
        "<thinking>Dermoscopy of Fitzpatrick type V skin shows a symmetric flat lesion with "
        "ill-defined border; colours red, pink; scale.</thinking> <diagnosis>actinic keratosis, "
        "precancerous in situ</diagnosis>"
    )
    assert findings_only(TYPE2) == (
        "<thinking>Based on the rule: Dermoscopy of Fitzpatrick type II skin shows a symmetric "
        "flat lesion with regular border; colours light brown, dark brown.</thinking> "
        "<diagnosis>dermal nevus, benign</diagnosis>"
    )


def test_findings_only_refuses_text_without_the_two_blocks():
    with pytest.raises(ValueError, match="not a trajectory"):
        findings_only("<thinking>no answer block</thinking>")


def _ds(text):
    msg = [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
    return datasets.Dataset.from_list([{"prompt": [], "completion": msg, "type": 1}])


def test_apply_prompt_style_compact_findings_uses_the_rl_answer_tag():
    row = apply_prompt_style(_ds(TYPE1), "compact", "findings")[0]
    text = row["completion"][0]["content"][0]["text"]
    assert text.endswith(
        "<final diagnosis>actinic keratosis, precancerous in situ</final diagnosis>"
    )
    text_part, image_part = row["prompt"][0]["content"]  # compact: the image last
    assert text_part["text"].startswith("Describe the lesion and diagnose it")
    assert image_part["type"] == "image"  # Arrow gives every block both keys


def test_apply_prompt_style_paper_full_is_the_data_unchanged_and_bad_values_are_named():
    ds = _ds(TYPE1)
    assert apply_prompt_style(ds, "paper", "full") is ds
    paper_cut = apply_prompt_style(ds, "paper", "findings")[0]["completion"][0]["content"][0][
        "text"
    ]
    assert paper_cut == findings_only(TYPE1)
    with pytest.raises(ValueError, match="sft.rationale"):
        apply_prompt_style(ds, "compact", "short")


def test_apply_prompt_style_compact_trains_the_compact_column_and_old_data_is_refused():
    compact = (
        "<thinking>Red scaly patch. Rule: strawberry pattern and scale indicate actinic "
        "keratosis.</thinking> <diagnosis>actinic keratosis, precancerous in situ</diagnosis>"
    )
    msg = [{"role": "assistant", "content": [{"type": "text", "text": TYPE1}]}]
    ds = datasets.Dataset.from_list(
        [{"prompt": [], "completion": msg, "type": 1, "compact": compact}]
    )
    text = apply_prompt_style(ds, "compact", "compact")[0]["completion"][0]["content"][0]["text"]
    assert text == compact.replace("diagnosis>", "final diagnosis>")
    with pytest.raises(ValueError, match="no compact column.*dvc repro trajectories"):
        apply_prompt_style(_ds(TYPE1), "compact", "compact")


NEVUS = (
    "<thinking>Symmetric flat lesion. Rule: uniform brown colour and hair indicate congenital "
    "nevus, a subtype of melanocytic nevus.</thinking> <final diagnosis>congenital nevus, benign"
    "</final diagnosis>"
)


def _rows(n):
    msg = [{"role": "assistant", "content": [{"type": "text", "text": NEVUS}]}]
    return datasets.Dataset.from_list(
        [{"prompt": [], "completion": msg, "type": 1 + i % 3, "id": f"t-{i}",
          "final": "congenital nevus"} for i in range(n)]
    )  # fmt: skip


def _asked(ds, **kw):
    from skinr1.sft import with_options
    from skinr1.taxonomy import load_taxonomy

    kw = {"share": 0.5, "n_options": 4, "seed": 7, "style": "compact",
          "trees": ["HAM10000", "derm12345"], **kw}  # fmt: skip
    return with_options(ds, load_taxonomy(), **kw)


def test_with_options_asks_a_share_as_the_evaluation_does_and_answers_the_finest_offered():
    from skinr1.prompts import template
    from skinr1.rewards import strict_answer
    from skinr1.taxonomy import load_taxonomy

    tax = load_taxonomy()
    ds = _rows(10)
    out = _asked(ds)
    asked = [i for i in range(10) if out[i]["prompt"] != []]
    assert len(asked) == 5  # round(10 x 0.5), the rest untouched
    assert all(out[i] == ds[i] for i in range(10) if i not in asked)
    for i in asked:
        row = out[i]
        prompt = row["prompt"][0]["content"][0]["text"]
        kind = "diagnosis" if row["type"] == 1 else "ood"
        head = template(kind, "compact").split("{question}")[0]
        assert prompt.startswith(head + "What type of abnormality is present in this image? A: ")
        options = dict(re.findall(r"([A-D]): (.+?)(?= [A-D]: |$)", prompt[len(head) :]))
        assert len(options) == 4
        offered = [o for o in tax.path("congenital nevus") if o in options.values()]
        text = row["completion"][0]["content"][0]["text"]
        # the reasoning to the subtype is kept; the answer is the finest option on its path
        assert text.startswith(NEVUS.split("<final diagnosis>")[0])
        assert text.endswith(f"<final diagnosis>{offered[-1]}, benign</final diagnosis>")
        letter = strict_answer(text, list(options), list(options.values()))
        assert options[letter] == offered[-1]
        # distractors: never on the path, never the OOD set's own labels
        others = set(options.values()) - set(offered)
        trees = set(tax.dataset_nodes("HAM10000")) | set(tax.dataset_nodes("derm12345"))
        assert others <= trees | set(tax.categories())
    assert out.to_list() == _asked(ds).to_list()  # same seed, same questions
    assert out.to_list() != _asked(ds, seed=8).to_list()


def test_with_options_zero_share_is_the_data_and_bad_input_is_named():
    ds = _rows(4)
    assert _asked(ds, share=0.0) is ds
    with pytest.raises(ValueError, match=r"sft.mcq_share = 1.0"):
        _asked(ds, share=1.0)
    with pytest.raises(ValueError, match="data.rl_datasets.*sft.mcq_share: 0"):
        _asked(ds, trees=[])
    bad = ds.map(lambda r: {"final": "no such disease"})
    with pytest.raises(ValueError, match="'no such disease' is not in the taxonomy"):
        _asked(bad, share=0.75)
    two = ds.map(lambda r: {"completion": [{"role": "assistant", "content": [
        {"type": "text", "text": NEVUS + NEVUS[-60:]}]}]})  # fmt: skip
    with pytest.raises(ValueError, match="expected one diagnosis block, found 2"):
        _asked(two, share=0.75)


def test_with_options_hide_label_asks_an_ancestors_question_so_only_reading_tells():
    ds = _rows(10)
    out = _asked(ds, share=0.5, hide_label=1.0)
    asked = [r for r in out if r["prompt"] != []]
    assert len(asked) == 5
    for row in asked:
        prompt = row["prompt"][0]["content"][0]["text"]
        assert "congenital nevus" not in prompt  # neither the label nor anything under it
        assert "A: melanocytic nevus" in prompt or ": melanocytic nevus" in prompt
        text = row["completion"][0]["content"][0]["text"]
        assert text.startswith(NEVUS.split("<final diagnosis>")[0])
        assert text.endswith("<final diagnosis>melanocytic nevus, benign</final diagnosis>")
    # a top-level label has no ancestor: its question is its own, whatever hide_label says
    top = ds.map(lambda r: {"final": "melanoma"})
    shown = [r for r in _asked(top, share=0.5, hide_label=1.0) if r["prompt"] != []]
    assert all(": melanoma" in r["prompt"][0]["content"][0]["text"] for r in shown)
