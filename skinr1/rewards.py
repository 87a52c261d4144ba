"""Answer extraction and the GRPO rewards of Eq. 5-8 (R_format + R_gran + R_malignancy).

Reward functions follow TRL's contract, ``f(completions, **kwargs) -> list[float]``: a completion
is a string or a list of chat messages, and dataset columns (``letters``, ``options``, ``scores``,
``malignancy``; see ``skinr1.mcq.Question.to_row``) arrive as per-completion lists.

Extraction is deliberately conservative, because a lenient parser is what a policy learns to
exploit: an answer counts only when it names exactly one option. Letters are read only as
standalone tokens (never the "B" of "Basal"), option texts by the longest match, and hedges such
as "A or B" or "benign or malignant" name several answers and earn nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence

from skinr1.taxonomy import MALIGNANCY

THINK, FINAL, SFT_DIAGNOSIS = "thinking", "final diagnosis", "diagnosis"


# --- text of a completion ---------------------------------------------------------------------
def completion_text(completion) -> str:
    """The assistant text of a string or a TRL conversational completion (list of messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if not isinstance(completion, Sequence):
        raise TypeError(f"completion must be a string or a list of messages, got {completion!r}")
    messages = [m for m in completion if m.get("role", "assistant") == "assistant"]
    parts = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, str):
            parts.append(content)
        else:  # multimodal content: a list of {"type": "text", "text": ...} parts
            parts.extend(p.get("text", "") for p in content if p.get("type", "text") == "text")
    return "\n".join(parts)


# --- tags ---------------------------------------------------------------------------------------
def _block_re(tag: str) -> re.Pattern:
    open_, close = re.escape(f"<{tag}>"), re.escape(f"</{tag}>")
    # The content may not contain another opening tag, so a tag merely mentioned earlier in the
    # text ("I will answer in <final diagnosis> ...") does not swallow the real block.
    return re.compile(f"{open_}((?:(?!{open_}).)*?){close}", re.S)


def extract_tags(text: str, tag: str) -> list[str]:
    """Contents (stripped) of every complete ``<tag>...</tag>`` block, in order."""
    return [m.strip() for m in _block_re(tag).findall(text)]


def extract_tag(text: str, tag: str) -> str | None:
    """Content of the LAST complete ``<tag>...</tag>`` block, or None.

    The last one, because a model that restates its answer concludes with it; the strict
    extraction used for rewards refuses repeated blocks altogether (see ``strict_answer``).
    """
    blocks = extract_tags(text, tag)
    return blocks[-1] if blocks else None


# --- choosing one option ------------------------------------------------------------------------
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_JOIN = r"[\s\-_/()\[\]]+"
# A standalone capital letter: not part of a word, an abbreviation ("B-cell") or a contraction.
_LETTER = re.compile(r"(?<![A-Za-z0-9'_\-])([A-Z])(?![A-Za-z0-9'_\-])")
# Lower-case letters only where they cannot be the article "a": alone, "(b)", "option b".
_LOWER_LETTER = re.compile(
    r"\(([a-z])\)|\b(?:option|choice|answer)\s*(?:is\s*)?[:\-]?\s*([a-z])(?=\s*(?:$|[.,;:)\]]))",
    re.I,
)
# "A"/"I" followed by a plain word is the article/pronoun ("A superficial spreading melanoma"),
# unless the word joins letters or asserts the choice ("A or B", "A is correct").
_ARTICLE_FOLLOW = re.compile(r"\s+([a-z][a-z'\-]*)")
_LETTER_WORDS = {"or", "and", "nor", "vs", "versus", "is", "was", "seems", "appears", "fits"}


def _norm_apostrophes(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'")


def option_pattern(text: str) -> re.Pattern | None:
    """Case-insensitive pattern for an option text on word boundaries, tolerant of hyphens,
    underscores and a plural ending; None for a text without any word."""
    words = _WORD.findall(_norm_apostrophes(text).lower())
    if not words:
        return None
    body = _JOIN.join(re.escape(w) for w in words)
    return re.compile(rf"(?<![a-z0-9]){body}(?:e?s)?(?![a-z0-9])", re.I)


def _options_dict(letters: Sequence[str], options) -> dict[str, str]:
    if isinstance(options, Mapping):
        return {k: options[k] for k in letters}
    if len(options) != len(letters):
        raise ValueError(f"{len(letters)} letters {list(letters)} but {len(options)} option texts")
    return dict(zip(letters, options, strict=True))


def _text_spans(content: str, options: dict[str, str]) -> list[tuple[int, int, str]]:
    spans = []
    for letter, text in options.items():
        pat = option_pattern(text)
        if pat is not None:
            spans.extend((m.start(), m.end(), letter) for m in pat.finditer(content))
    return spans


def _named_by_text(spans: list[tuple[int, int, str]]) -> set[str]:
    """Letters whose text occurs outside any longer option text ("melanoma" inside "superficial
    spreading melanoma" names only the longer option)."""
    named = set()
    for s, e, letter in spans:
        nested = any(
            s2 <= s and e <= e2 and (e2 - s2) > (e - s) and l2 != letter for s2, e2, l2 in spans
        )
        if not nested:
            named.add(letter)
    return named


def _named_by_letter(content: str, letters: Sequence[str]) -> set[str]:
    valid = set(letters)
    named = set()
    for m in _LETTER.finditer(content):
        letter = m.group(1)
        if letter not in valid:
            continue
        if letter in {"A", "I"}:
            follow = _ARTICLE_FOLLOW.match(content, m.end())
            if follow and follow.group(1) not in _LETTER_WORDS:
                continue
        named.add(letter)
    for m in _LOWER_LETTER.finditer(content):
        letter = (m.group(1) or m.group(2)).upper()
        if letter in valid:
            named.add(letter)
    bare = re.sub(r"[\s*_.:()\[\]`'\"]+", "", content)
    if len(bare) == 1 and bare.upper() in valid:
        named.add(bare.upper())
    return named


def parse_choice(content: str | None, letters: Sequence[str], options_texts) -> str | None:
    """The one option ``content`` names, by letter or by text; None for zero or several.

    Letters count as standalone tokens ("B", "B:", "(B)", "**B**", "Option B"). Option texts
    count on word boundaries with the longest match winning. When a letter is given, any option
    text that is also named must be that letter's ("B: melanoma" with B = nevus names two options
    and returns None); without a letter exactly one option text must be named.
    """
    if content is None:
        return None
    content = _norm_apostrophes(content)
    options = _options_dict(letters, options_texts)
    spans = _text_spans(content, options)
    by_text = _named_by_text(spans)
    # Mask option texts before reading letters, so a capital inside an option ("vitamin D
    # deficiency") is not read as a letter; the mask stays a word, so "A melanoma" still reads
    # as the article "A" followed by a word.
    chars = list(content)
    for s, e, _ in spans:
        chars[s:e] = "x" * (e - s)
    by_letter = _named_by_letter("".join(chars), letters)
    if by_letter:
        if len(by_letter) == 1 and by_text <= by_letter:
            return next(iter(by_letter))
        return None
    return next(iter(by_text)) if len(by_text) == 1 else None


# --- lesion condition ---------------------------------------------------------------------------
_PRECANCEROUS = re.compile(r"\bpre[\s\-]?(?:cancerous|malignant)(?:\s+in[\s\-]situ)?\b", re.I)
_BENIGN = re.compile(r"\bbenign\b", re.I)
_MALIGNANT = re.compile(r"\bmalignant\b", re.I)
_NEGATED = re.compile(
    r"(?:\bnot|\bnon|\bno|\bnor|\bneither|\bnever|\bwithout|\brather\s+than|\binstead\s+of"
    r"|\bexclud\w*|\brul\w*\s+out)\s*-?\s*(?:(?:a|an|be|being|likely|clearly|definitely)\s+)*$",
    re.I,
)


def parse_malignancy(text: str | None, ignore: Sequence[str] = ()) -> str | None:
    """The single lesion condition ``text`` affirms, one of ``MALIGNANCY``, else None.

    "precancerous", "pre-cancerous", "premalignant", "pre-malignant" and "precancerous in situ"
    mean "precancerous in situ"; a bare "in situ" does not, since it is part of diagnosis names
    ("melanoma in situ"). A negated mention ("not malignant", "non-malignant", "rather than
    malignant") is dropped: "benign, not malignant" is benign, "not malignant" alone is None.
    Phrases in ``ignore`` (option texts such as "benign keratosis") are blanked first, so a
    diagnosis name is not read as a condition. Several affirmed conditions return None.
    """
    if text is None:
        return None
    text = _norm_apostrophes(text)
    for phrase in ignore:
        pat = option_pattern(phrase)
        if pat is not None:
            text = pat.sub(lambda m: " " * len(m.group(0)), text)
    found = set()
    for label, pattern in (
        ("precancerous in situ", _PRECANCEROUS),
        ("benign", _BENIGN),
        ("malignant", _MALIGNANT),
    ):
        for m in pattern.finditer(text):
            if not _NEGATED.search(text, 0, m.start()):
                found.add(label)
        # Blank precancerous mentions so "pre-malignant" is not read again as "malignant".
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return next(iter(found)) if len(found) == 1 else None


# --- answers ------------------------------------------------------------------------------------
def strict_answer(completion, question_letters: Sequence[str], options) -> str | None:
    """The letter chosen in the one and only ``<final diagnosis>`` block, else None.

    Used by the rewards and the Skin-R1 evaluation: a missing, unclosed or repeated block, or a
    block naming zero or several options, is no answer.
    """
    blocks = extract_tags(completion_text(completion), FINAL)
    if len(blocks) != 1:
        return None
    return parse_choice(blocks[0], question_letters, options)


_ANSWER_CUE = re.compile(
    r"(?:final\s+answer|answer|diagnosis|option|choice)\s*(?:is|would\s+be|:)\s*(.+)", re.I
)


def lenient_answer(completion, question_letters: Sequence[str], options) -> str | None:
    """Answer extraction for baselines without the required format (§4 "answer extraction").

    A complete ``<final diagnosis>`` block decides alone (the last one, if repeated). Without
    one, the first of these that names exactly one option wins: the text after an unclosed
    ``<final diagnosis>``, the last ``<diagnosis>`` block (SFT format), the sentence after the
    last answer cue ("the answer is ...", "Diagnosis: ..."), the last non-empty line, and the
    whole text outside ``<thinking>``.
    """
    text = completion_text(completion)
    block = extract_tag(text, FINAL)
    if block is not None:
        return parse_choice(block, question_letters, options)
    candidates = []
    if f"<{FINAL}>" in text:
        candidates.append(text.rsplit(f"<{FINAL}>", 1)[1])
    candidates.append(extract_tag(text, SFT_DIAGNOSIS))
    cues = list(_ANSWER_CUE.finditer(text))
    if cues:
        candidates.append(re.split(r"(?<=[.!?])\s|\n", cues[-1].group(1))[0])
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines:
        candidates.append(lines[-1])
    candidates.append(_block_re(THINK).sub(" ", text))
    for c in candidates:
        letter = parse_choice(c, question_letters, options)
        if letter is not None:
            return letter
    return None


# --- rewards (Eq. 5-8) --------------------------------------------------------------------------
_FORMAT = re.compile(rf"\s*<{THINK}>.*?</{THINK}>\s*<{FINAL}>.*?</{FINAL}>\s*", re.S)
_TAGS = (f"<{THINK}>", f"</{THINK}>", f"<{FINAL}>", f"</{FINAL}>")


def _column(kwargs: dict, name: str, reward: str) -> list:
    if name not in kwargs:
        raise ValueError(
            f"{reward} needs the dataset column {name!r} (build rows with "
            "skinr1.mcq.Question.to_row); got columns "
            f"{sorted(k for k in kwargs if k not in {'trainer_state', 'log_extra', 'log_metric'})}"
        )
    return kwargs[name]


def format_reward(completions, **kwargs) -> list[float]:
    """Eq. 6: 1.0 iff the completion is ``<thinking>…</thinking>`` then ``<final diagnosis>…
    </final diagnosis>``, each tag exactly once, with only whitespace outside the two blocks
    (as the authors' regex); empty blocks are allowed, as "all tags present" implies."""
    out = []
    for c in completions:
        text = completion_text(c)
        ok = all(text.count(t) == 1 for t in _TAGS) and _FORMAT.fullmatch(text) is not None
        out.append(1.0 if ok else 0.0)
    return out


def granularity_reward(completions, **kwargs) -> list[float]:
    """Eq. 7: the precomputed score of the single option chosen in ``<final diagnosis>``."""
    letters = _column(kwargs, "letters", "granularity_reward")
    options = _column(kwargs, "options", "granularity_reward")
    scores = _column(kwargs, "scores", "granularity_reward")
    out = []
    for c, lt, op, sc in zip(completions, letters, options, scores, strict=True):
        letter = strict_answer(c, lt, op)
        out.append(float(sc[list(lt).index(letter)]) if letter is not None else 0.0)
    return out


def malignancy_reward(completions, **kwargs) -> list[float]:
    """Eq. 8: 0.25 iff the one ``<final diagnosis>`` block affirms the true lesion condition.

    Option texts are blanked before the condition is read (when the ``options`` column exists),
    so "benign keratosis-like lesion, malignant" reads as malignant.
    """
    truth = _column(kwargs, "malignancy", "malignancy_reward")
    options = kwargs.get("options") or [()] * len(completions)
    out = []
    for c, gt, op in zip(completions, truth, options, strict=True):
        blocks = extract_tags(completion_text(c), FINAL)
        ignore = [o for o in op if o.strip().lower() not in MALIGNANCY]
        said = parse_malignancy(blocks[0], ignore) if len(blocks) == 1 else None
        out.append(0.25 if said is not None and said == gt else 0.0)
    return out


MAX_CONSISTENCY = 0.25  # as R_malignancy: a side condition, never worth a wrong answer (0.75)


@functools.cache
def _knowledge():
    """The shipped knowledge base's rationale reader and rule features, loaded once per process
    for R_consistency."""
    from skinr1.rules import load_rules, load_vocabulary
    from skinr1.taxonomy import load_taxonomy
    from skinr1.trust import TrustKnowledge

    taxonomy = load_taxonomy()
    kb = TrustKnowledge(taxonomy, load_rules(taxonomy), load_vocabulary(), "rules")
    return kb.reader, functools.cache(kb.rule_keys)


def consistency_reward(completions, **kwargs) -> list[float]:
    """R_consistency (ours, an ablation; off in the paper's Eq. 5): 0.25 x the share of the
    features stated in ``<thinking>`` that the chosen option's textbook rule lists, so a rationale
    earns only by arguing for the diagnosis it reaches. 0 without one answer, one ``<thinking>``
    block, a stated vocabulary feature, or a rule for the chosen option."""
    letters = _column(kwargs, "letters", "consistency_reward")
    options = _column(kwargs, "options", "consistency_reward")
    reader, rule_keys = _knowledge()
    out = []
    for c, lt, op in zip(completions, letters, options, strict=True):
        text = completion_text(c)
        letter = strict_answer(text, lt, op)
        thinking = extract_tags(text, THINK)
        rule = rule_keys(list(op)[list(lt).index(letter)]) if letter is not None else None
        stated = reader.read(thinking[0])[0] if len(thinking) == 1 and rule is not None else None
        out.append(MAX_CONSISTENCY * len(stated & rule) / len(stated) if stated else 0.0)
    return out


REWARDS: dict[str, Callable[..., list[float]]] = {
    "format": format_reward,
    "granularity": granularity_reward,
    "malignancy": malignancy_reward,
    "consistency": consistency_reward,
}
PAPER_REWARDS = ("format", "granularity", "malignancy")  # Eq. 5


def get_reward_funcs(names: Sequence[str]) -> list[Callable[..., list[float]]]:
    """Reward functions by name, in the given order (for ``GRPOTrainer(reward_funcs=...)``)."""
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward name(s) {unknown}; valid names are {list(REWARDS)}")
    return [REWARDS[n] for n in names]


def total_reward(completion, row: Mapping) -> float:
    """Eq. 5 for one completion and one ``Question.to_row`` dict."""
    cols = {k: [v] for k, v in row.items()}
    return sum(REWARDS[n]([completion], **cols)[0] for n in PAPER_REWARDS)
