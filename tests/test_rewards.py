"""Answer extraction and the Eq. 5-8 rewards on hand-written completions."""

from __future__ import annotations

import pytest

from skinr1.mcq import Question
from skinr1.rewards import (
    REWARDS,
    consistency_reward,
    extract_tag,
    format_reward,
    get_reward_funcs,
    granularity_reward,
    lenient_answer,
    malignancy_reward,
    parse_choice,
    parse_malignancy,
    strict_answer,
    total_reward,
)

LETTERS = ["A", "B", "C", "D"]
OPTIONS = [
    "melanoma",
    "actinic keratosis",
    "basal cell carcinoma",
    "superficial spreading melanoma",
]
# Ground truth path [melanocytic lesion, melanoma, superficial spreading melanoma] (L = 3):
# melanoma (depth 2) and SSM (depth 3) are on it; "sampled" norm -> 0.5 and 0.75.
QUESTION = Question(
    id="q1",
    image="/img/q1.jpg",
    dataset="DEMO",
    node="superficial spreading melanoma",
    path=("melanocytic lesion", "melanoma", "superficial spreading melanoma"),
    malignancy="malignant",
    options=dict(zip(LETTERS, OPTIONS, strict=True)),
    answer="D",
    scores={"A": 0.5, "B": 0.0, "C": 0.0, "D": 0.75},
    kind="disease",
    question="What type of abnormality is present in this image? A: melanoma ...",
)
ROW = QUESTION.to_row()


def wrap(final: str, thinking: str = "Asymmetric, several colours, atypical network.") -> str:
    return f"<thinking>{thinking}</thinking>\n<final diagnosis>{final}</final diagnosis>"


def rewards(completion) -> tuple[float, float, float]:
    cols = {k: [v] for k, v in ROW.items()}
    return (
        format_reward([completion], **cols)[0],
        granularity_reward([completion], **cols)[0],
        malignancy_reward([completion], **cols)[0],
    )


# --- parse_choice -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, expected",
    [
        ("B", "B"),
        ("B:", "B"),
        ("(B)", "B"),
        ("**B**", "B"),
        ("Option B", "B"),
        ("option b", "B"),
        ("b", "B"),
        ("B: actinic keratosis", "B"),
        ("The answer is C.", "C"),
        ("D: superficial spreading melanoma, malignant", "D"),
        # by text only, longest option wins over the nested "melanoma"
        ("superficial spreading melanoma", "D"),
        ("melanoma, malignant", "A"),
        ("Melanomas", "A"),
        # the "B" of "Basal" is no letter: matched by text, as option C
        ("Basal cell carcinoma", "C"),
        ("Basal cell carcinoma, malignant", "C"),
        # "A" as an article before a word is no letter
        ("A superficial spreading melanoma", "D"),
        ("A is the best fit", "A"),
        # hedges and contradictions name several options
        ("A or B", None),
        ("A, B, C, D", None),
        ("A/B", None),
        ("melanoma or superficial spreading melanoma", None),
        ("basal cell carcinoma and actinic keratosis", None),
        ("B: melanoma", None),  # letter B but option A's text
        # nothing named
        ("", None),
        ("squamous cell carcinoma", None),
        ("E", None),
        ("B-cell lymphoma", None),
    ],
)
def test_parse_choice(content, expected):
    assert parse_choice(content, LETTERS, OPTIONS) == expected


def test_parse_choice_accepts_a_letter_to_text_mapping():
    assert parse_choice("actinic keratosis", LETTERS, QUESTION.options) == "B"
    with pytest.raises(ValueError, match="4 letters"):
        parse_choice("A", LETTERS, OPTIONS[:3])


# --- parse_malignancy ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("benign", "benign"),
        ("Malignant", "malignant"),
        ("precancerous in situ", "precancerous in situ"),
        ("precancerous", "precancerous in situ"),
        ("premalignant", "precancerous in situ"),
        ("pre-malignant lesion", "precancerous in situ"),  # not also "malignant"
        ("benign, malignant, precancerous in situ", None),
        ("benign or malignant", None),
        ("not malignant", None),  # negation drops the mention; nothing is affirmed
        ("benign, not malignant", "benign"),
        ("non-malignant; benign", "benign"),
        ("neither benign nor malignant", None),
        ("melanoma in situ", None),  # bare "in situ" belongs to diagnosis names
        ("malignant melanoma, malignant", "malignant"),
        ("", None),
    ],
)
def test_parse_malignancy(text, expected):
    assert parse_malignancy(text) == expected


def test_parse_malignancy_ignores_option_names():
    text = "benign keratosis-like lesion, malignant"
    assert parse_malignancy(text) is None
    assert parse_malignancy(text, ignore=["benign keratosis-like lesion"]) == "malignant"


# --- tags and answers ---------------------------------------------------------------------------
def test_extract_tag_takes_the_last_complete_block():
    text = "I answer in <final diagnosis> tags. <final diagnosis>A</final diagnosis> x " + (
        "<final diagnosis>D</final diagnosis> <final diagnosis>unclosed"
    )
    assert extract_tag(text, "final diagnosis") == "D"
    assert extract_tag("<thinking> a </thinking>", "thinking") == "a"
    assert extract_tag("no tags", "thinking") is None


def test_strict_and_lenient_answers():
    assert strict_answer(wrap("D"), LETTERS, OPTIONS) == "D"
    two = wrap("A") + "<final diagnosis>D</final diagnosis>"
    assert strict_answer(two, LETTERS, OPTIONS) is None  # repeated block: no answer
    assert lenient_answer(two, LETTERS, OPTIONS) == "D"  # the last one
    bare = "Irregular network.\nThe most likely diagnosis is C: basal cell carcinoma."
    assert strict_answer(bare, LETTERS, OPTIONS) is None
    assert lenient_answer(bare, LETTERS, OPTIONS) == "C"
    sft_style = "<diagnosis>actinic keratosis, precancerous</diagnosis>"
    assert lenient_answer(sft_style, LETTERS, OPTIONS) == "B"
    assert lenient_answer("<thinking>x</thinking><final diagnosis>B", LETTERS, OPTIONS) == "B"
    # a block that hedges is not rescued by the fallbacks
    assert lenient_answer(wrap("A or D") + "\nD", LETTERS, OPTIONS) is None
    assert lenient_answer("It could be melanoma or basal cell carcinoma.", LETTERS, OPTIONS) is None


# --- rewards ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "completion, expected",
    [
        # well-formed, finest correct option, right condition: 1 + 0.75 + 0.25 (Eq. 5)
        (wrap("D: superficial spreading melanoma, malignant"), (1.0, 0.75, 0.25)),
        # coarser on-path option earns its precomputed 0.5
        (wrap("A, malignant"), (1.0, 0.5, 0.25)),
        (wrap("C: basal cell carcinoma, benign"), (1.0, 0.0, 0.0)),
        # letter-in-word: "Basal..." is option C by text, never "B"
        (wrap("Basal cell carcinoma, malignant"), (1.0, 0.0, 0.25)),
        (wrap("D"), (1.0, 0.75, 0.0)),  # no condition given
        (wrap("D, benign, malignant, precancerous in situ"), (1.0, 0.75, 0.0)),
        (wrap("A or D, malignant"), (1.0, 0.0, 0.25)),
        (wrap("A, B, C, D"), (1.0, 0.0, 0.0)),
        # missing final block: nothing (strict extraction)
        ("<thinking>x</thinking> D, malignant", (0.0, 0.0, 0.0)),
        ("<thinking>x</thinking><final diagnosis>D, malignant", (0.0, 0.0, 0.0)),
        # out of order: format fails, but the single final block still answers
        (
            "<final diagnosis>D, malignant</final diagnosis><thinking>x</thinking>",
            (0.0, 0.75, 0.25),
        ),
        # duplicated tags
        (
            "<thinking>a</thinking><thinking>b</thinking><final diagnosis>D</final diagnosis>",
            (0.0, 0.75, 0.0),
        ),
        (wrap("D, malignant") + "<final diagnosis>D, malignant</final diagnosis>", (0.0, 0.0, 0.0)),
        # text outside the blocks is not allowed; whitespace is
        (wrap("D, malignant") + " I hope this helps.", (0.0, 0.75, 0.25)),
        ("Sure! " + wrap("D, malignant"), (0.0, 0.75, 0.25)),
        ("\n  " + wrap("D, malignant") + "\n", (1.0, 0.75, 0.25)),
        # empty blocks still carry all tags (Eq. 6)
        ("<thinking></thinking><final diagnosis></final diagnosis>", (1.0, 0.0, 0.0)),
    ],
)
def test_rewards_by_hand(completion, expected):
    assert rewards(completion) == pytest.approx(expected)
    assert total_reward(completion, ROW) == pytest.approx(sum(expected))


def test_conversational_and_string_completions_agree():
    texts = [wrap("D, malignant"), wrap("B"), "no format at all"]
    chat = [[{"role": "assistant", "content": t}] for t in texts]
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": t}]}] for t in texts]
    cols = {k: [v] * 3 for k, v in ROW.items()}
    extra = {"prompts": ["p"] * 3, "completion_ids": [[1]] * 3, "trainer_state": None}
    expected = {
        "format": [1.0, 1.0, 0.0],
        "granularity": [0.75, 0.0, 0.0],
        "malignancy": [0.25, 0.0, 0.0],
        "consistency": [0.25, 0.0, 0.0],  # SSM's rule is asymmetric; actinic keratosis's is not
    }
    for name, f in REWARDS.items():
        want = expected[name]
        assert f(texts, **cols, **extra) == want
        assert f(chat, **cols, **extra) == want
        assert f(parts, **cols, **extra) == want


def test_granularity_reward_names_missing_columns():
    with pytest.raises(ValueError, match="'letters'.*to_row"):
        granularity_reward([wrap("D")], options=[OPTIONS], scores=[[0, 0, 0, 0.75]])


@pytest.mark.parametrize(
    ("final", "thinking", "expected"),
    [
        # melanoma's rule lists asymmetric, black and the veil, not pink: 3 of 4 stated features
        ("A", "Asymmetric lesion; colours black, pink; blue-white veil.", 0.25 * 3 / 4),
        # basal cell carcinoma's lists pink alone of them
        ("C", "Asymmetric lesion; colours black, pink; blue-white veil.", 0.25 * 1 / 4),
        # "melanoma" in the rationale is a name, not a feature: nothing stated
        ("A", "It looks like melanoma.", 0.0),
        ("A or C", "Asymmetric lesion.", 0.0),  # no single answer
    ],
)
def test_consistency_reward_by_hand(final, thinking, expected):
    cols = {k: [v] for k, v in ROW.items()}
    assert consistency_reward([wrap(final, thinking)], **cols) == [pytest.approx(expected)]
    assert consistency_reward([f"<final diagnosis>{final}</final diagnosis>"], **cols) == [0.0]


def test_get_reward_funcs():
    assert get_reward_funcs(["malignancy", "format"]) == [malignancy_reward, format_reward]
    with pytest.raises(ValueError, match=r"\['accuracy'\].*'format', 'granularity', 'malignancy'"):
        get_reward_funcs(["format", "accuracy"])


def test_lesion_row_scores_one_for_the_right_letter():
    row = Question(
        id="q2", image="/i.jpg", dataset="DEMO", node="actinic keratosis",
        path=("keratinocytic lesion", "actinic keratosis"), malignancy="precancerous in situ",
        options={"A": "benign", "B": "malignant", "C": "precancerous in situ"}, answer="C",
        scores={"A": 0.0, "B": 0.0, "C": 1.0}, kind="lesion", question="...",
    ).to_row()  # fmt: skip
    cols = {k: [v] for k, v in row.items()}
    assert granularity_reward([wrap("C")], **cols) == [1.0]
    assert granularity_reward([wrap("C: precancerous in situ")], **cols) == [1.0]
    # "precancerous" alone is not the option text "precancerous in situ"
    assert granularity_reward([wrap("precancerous")], **cols) == [0.0]
    # option texts equal to a condition word are not blanked, so the condition is still read
    assert malignancy_reward([wrap("C: precancerous in situ")], **cols) == [0.25]
