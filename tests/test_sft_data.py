"""How SFT re-renders SkinRationale for the model being trained (prompt style, findings cut)."""

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
