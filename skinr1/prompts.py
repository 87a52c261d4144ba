"""The prompt templates of Appendix D, and the chat messages built from them."""

from __future__ import annotations

SYSTEM = "You are a medical vision-language assistant specializing in dermatology."

SFT_TYPE1 = (
    f"{SYSTEM} Given the dermatology image, analyze the visual findings and provide a structured "
    "diagnosis following this format: <thinking>Describe the key clinical features, visual "
    "observations, and the diagnostic rationale that support the diagnosis.</thinking> "
    "<diagnosis>Provide the most likely and specific fine-grained diagnosis, and briefly classify "
    "the condition (benign or malignant) along with any relevant clinical taxonomy.</diagnosis> "
    "Ensure your response is medically accurate, concise, and strictly follows the specified format."
)

SFT_TYPE23 = (
    f"{SYSTEM} Given the dermatology image, analyze the visual findings and provide a structured "
    "diagnostic reasoning following this format: <thinking> Begin by describing the characteristic "
    "clinical features and visual observations of the lesion. Based on these features, propose the "
    "most likely diagnosis. Then identify at least one plausible alternative diagnosis and describe "
    "its defining features. Compare the observed lesion with these alternatives and explain step by "
    "step why the final diagnosis is more consistent with the findings. Conclude the reasoning with "
    "the single condition that best matches the clinical presentation. </thinking> <diagnosis> "
    "Provide only the single most likely and specific fine-grained diagnosis. Also briefly classify "
    "the condition (benign or malignant) and indicate any relevant clinical taxonomy (e.g., subtype "
    "or disease family). Do not include explanations, multiple options, or extra punctuation. "
    "</diagnosis> Ensure your response is medically accurate, concise, and strictly follows the "
    "specified format."
)

QUESTION = "What type of abnormality is present in this image?"

# RL training: the answer names an option and the lesion condition (R_malignancy reads it).
RL_TEMPLATE = (
    SYSTEM + " Given the dermatology image, answer: {question}\n"
    "Provide necessary reasoning and only answer the question in the following format:\n"
    "<thinking>Describe the key clinical features and visual observations that support your "
    "diagnosis.</thinking> <final diagnosis>Provide only the single most likely option without "
    "reasoning. If multiple options are plausible, always choose the most fine-grained (i.e., most "
    "specific or detailed) option available among them. Also provide the lesion condition (benign, "
    "malignant or precancerous in situ). </final diagnosis> Ensure your response is medically "
    "accurate, concise, and strictly follows the specified format."
)

DIAGNOSIS_TEMPLATE = (
    SYSTEM
    + " Given the dermatology image, answer: {question} Provide necessary reasoning and only "
    "answer the question in the following format: <thinking>Describe the key clinical features and "
    "visual observations that support your diagnosis.</thinking> <final diagnosis>Provide only the "
    "single most likely option ({letters}) without reasoning. If multiple options are plausible, "
    "always choose the most fine-grained (i.e., most specific or detailed) option available among "
    "them. </final diagnosis> Ensure your response is medically accurate, concise, and strictly "
    "follows the specified format."
)

OOD_TEMPLATE = (
    SYSTEM
    + " Given the dermatology image, answer: {question} Provide necessary reasoning and only "
    "answer the question in the following format: <thinking> Begin by describing the characteristic "
    "clinical features and visual observations of the lesion. Based on these features, choose the "
    "most likely diagnosis from the options. Then, identify at least one plausible alternative "
    "diagnosis from other options and describe its defining features. Compare the observed lesion "
    "with these alternatives, and explain step by step why the final diagnosis is more consistent "
    "with the findings. Conclude the reasoning with the single condition that best matches the "
    "clinical presentation. </thinking> <final diagnosis>Provide only the single most likely option "
    "without reasoning. </final diagnosis> Ensure your response is medically accurate, concise, and "
    "strictly follows the specified format."
)

LESION_PROMPT = (
    SYSTEM
    + " Given the dermatology image, answer: What type of lesion condition (benign, malignant "
    "or precancerous in situ) is present in this image? A: benign B: malignant C: precancerous in "
    "situ Provide necessary reasoning and only answer the question in the following format: "
    "<thinking>Describe the key clinical features and visual observations that support your "
    "diagnosis.</thinking> <final diagnosis>Only output one option: A, B, or C.</final diagnosis> "
    "Ensure your response is medically accurate, concise, and strictly follows the specified format."
)

QUALITATIVE_PROMPT = (
    SYSTEM + " Given the dermatology image, answer: What type of abnormality is present in this "
    "image? Describe the key clinical features and visual observations that support your diagnosis. "
    "And then the diagnosis. Also provide the lesion condition (benign, malignant or precancerous in "
    "situ)."
)

LESION_OPTIONS = {"A": "benign", "B": "malignant", "C": "precancerous in situ"}


def format_question(options: dict[str, str], question: str = QUESTION) -> str:
    """'What type ...? A: x B: y C: z D: w' as in the paper's examples."""
    return question + " " + " ".join(f"{k}: {v}" for k, v in options.items())


def user_message(text: str, style: str = "paper") -> list[dict]:
    """A conversational user turn holding one image placeholder and the prompt text.

    Paper style puts the image first, as Qwen2.5-VL's examples do. Compact style puts it last,
    next to the answer: the tiny model's attention is close to uniform, so every text token
    between the image and the answer dilutes it (measured: SFT's HAM10000 accuracy was 0.88 under
    its own prompt, 0.28 once four options followed the image, and 0.82 with the options placed
    before the image and SFT's instruction kept whole, as in ``COMPACT``).
    """
    image, words = {"type": "image"}, {"type": "text", "text": text}
    content = [words, image] if style == "compact" else [image, words]
    return [{"role": "user", "content": content}]


# Compact variants for the embedded tiny model: the same fields and instructions in about a fifth
# of the tokens, because on a 2-core CPU every prompt token is paid for in every training step and
# every sampled completion. One answer tag, <final diagnosis>, serves SFT and RL alike: a 7B model
# carries "the diagnosis I reasoned to" from one tag to another, a 2.5 M-parameter one does not.
# Paper scale uses the Appendix D texts above.
ANSWER_TAG = "final diagnosis"
_COMPACT_SFT1 = (
    "Describe the lesion and diagnose it: <thinking>features and rationale</thinking> "
    "<final diagnosis>finest diagnosis, its taxonomy, benign or malignant</final diagnosis>"
)
_COMPACT_SFT23 = (
    "Describe the lesion, propose a diagnosis, compare an alternative and conclude: "
    "<thinking>reasoning</thinking> <final diagnosis>finest diagnosis, its taxonomy, benign or "
    "malignant</final diagnosis>"
)
COMPACT = {
    "sft_type1": _COMPACT_SFT1,
    "sft_type23": _COMPACT_SFT23,
    # RL and evaluation questions are the SFT instruction, word for word, followed by the question
    # and its options: the tiny model answers them the way SFT taught it only when the prompt it
    # learnt is intact (a 7B model needs no such cue). It already asks for the finest diagnosis and
    # the lesion condition, which R_gran and R_malignancy read.
    "rl": _COMPACT_SFT1 + " {question}",
    "diagnosis": _COMPACT_SFT1 + " {question}",
    # Appendix D's OOD prompt is the Type 2-3 SFT instruction turned into a question (propose,
    # compare an alternative, conclude): so is this one, as "rl" is for Type 1.
    "ood": _COMPACT_SFT23 + " {question}",
    "lesion": "Answer: What type of lesion condition is present? A: benign B: malignant C: "
    "precancerous in situ\n<thinking>features</thinking> <final diagnosis>A, B or C</final "
    "diagnosis>",
    # Appendix E asks for the features, the diagnosis and the lesion condition: SFT's instruction
    # asks for exactly that, and the tiny model answers only prompts it was trained on.
    "qualitative": _COMPACT_SFT1,
}
PAPER = {
    "sft_type1": SFT_TYPE1,
    "sft_type23": SFT_TYPE23,
    "rl": RL_TEMPLATE,
    "diagnosis": DIAGNOSIS_TEMPLATE,
    "ood": OOD_TEMPLATE,
    "lesion": LESION_PROMPT,
    "qualitative": QUALITATIVE_PROMPT,
}
STYLES = {"paper": PAPER, "compact": COMPACT}

# The warm-up's generic visual question answering (a stand-in for instruction tuning): it teaches
# the answer tags without the diagnostic instruction that SFT and RL use.
VQA_TEMPLATE = "Answer: {question}\n<thinking>features</thinking> <final diagnosis>one option</final diagnosis>"


def template(name: str, style: str = "paper") -> str:
    """A prompt template by role (sft_type1, sft_type23, rl, diagnosis, ood, lesion, qualitative)
    in the given style ("paper": Appendix D verbatim; "compact": the tiny model's)."""
    if style not in STYLES:
        raise ValueError(f"model.prompt_style = {style!r}: expected one of {sorted(STYLES)}")
    return STYLES[style][name]
