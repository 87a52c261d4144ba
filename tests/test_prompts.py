import pytest

from skinr1 import prompts


def test_paper_prompts_are_appendix_d_verbatim_in_key_phrases():
    assert prompts.template("rl").startswith(
        "You are a medical vision-language assistant specializing in dermatology. Given the "
        "dermatology image, answer: {question}"
    )
    assert (
        "<final diagnosis>Only output one option: A, B, or C.</final diagnosis>"
        in prompts.LESION_PROMPT
    )
    assert (
        "Also provide the lesion condition (benign, malignant or precancerous in situ)."
        in prompts.RL_TEMPLATE
    )


@pytest.mark.parametrize("name", sorted(prompts.PAPER))
def test_compact_prompts_keep_the_question_and_the_tags(name):
    paper, compact = prompts.template(name, "paper"), prompts.template(name, "compact")
    assert ("{question}" in paper) == ("{question}" in compact), name
    assert "<diagnosis>" not in compact
    assert len(compact) < len(paper) / 2
    if name == "qualitative":  # Appendix E's prompt names no tags; the compact one is SFT's
        return
    assert ("<thinking>" in paper) == ("<thinking>" in compact), name
    # Compact answers always in the RL prompt's tag, wherever the paper asks for any answer tag.
    asks_answer = "<diagnosis>" in paper or "<final diagnosis>" in paper
    assert ("<final diagnosis>" in compact and "</final diagnosis>" in compact) == asks_answer


def test_compact_questions_are_the_sft_instruction_then_the_question():
    # The tiny model answers as SFT taught it only under SFT's own instruction, word for word.
    sft = prompts.template("sft_type1", "compact")
    assert prompts.template("rl", "compact") == sft + " {question}"
    assert prompts.template("diagnosis", "compact") == sft + " {question}"
    assert prompts.template("qualitative", "compact") == sft
    # OOD, as Appendix D's: the Type 2-3 instruction (propose, compare, conclude) as a question.
    sft23 = prompts.template("sft_type23", "compact")
    assert prompts.template("ood", "compact") == sft23 + " {question}"
    assert "compare an alternative" in prompts.template("ood", "compact")


def test_format_question_and_unknown_style():
    q = prompts.format_question({"A": "melanoma", "B": "melanocytic nevus"})
    assert (
        q == "What type of abnormality is present in this image? A: melanoma B: melanocytic nevus"
    )
    with pytest.raises(ValueError, match="model.prompt_style = 'short'"):
        prompts.template("rl", "short")
