"""The probability a model gives to each option of a multiple-choice question at the answer
position, for calibration and deferral metrics (a strict answer says which option, not how sure).

Definition
----------
**Answer position.** The model's own response up to and including its first
``<final diagnosis>`` tag. A response without that tag but with ``</thinking>`` is cut after its
first ``</thinking>`` and ``" <final diagnosis>"`` is appended (the model finished reasoning and
the answer was due next). A response with neither is not scored: ``None``, never a made-up number.
The scored text is the evaluation chat (``prompt_for`` + ``user_message``, with the generation
prompt, exactly as ``evaluation.generate`` builds it) followed by that prefix, with the image.

**Naming sequences.** Option ``i`` with letter ``L_i`` and text ``T_i`` is named by two token
sequences: the tokens of ``L_i`` and the tokens of ``T_i``, each as they follow the prefix. They are
found by tokenizing prefix + continuation and taking the tokens after the prefix's own tokens. When
BPE merges across the boundary (the prefix's tokens change, e.g. ``"mel" + "anoma"``), the
continuation is tokenized alone instead: its probability is then that of this (possibly
non-canonical) split after the unchanged prefix. Both tags are single tokens in the tiny model's
tokenizer, so there this never happens; with a byte-level BPE such as Qwen's, ``>`` followed by a
letter is one pre-token and can merge.

**Probabilities.** ``P(s)`` is the product of the model's conditional next-token probabilities
along sequence ``s`` after the prefix (teacher forcing). Each naming sequence ``s`` stands for the
event "the next tokens spell ``s`` and do not continue into a longer naming sequence":
``P(s) - sum_t P(t)`` over the shortest naming sequences ``t`` that strictly extend ``s`` (so
"melanoma" excludes "melanoma in situ", and a chain melanoma < melanoma in situ < ... is subtracted
once per level, not twice). These events are disjoint, so nothing is counted twice, including a
letter whose tokens are the first tokens of an option text ("B" vs "B-cell lymphoma"). Then

    p_i = P(event(L_i's tokens)) + P(event(T_i's tokens))

A sequence shared by the letter and the text of the same option counts once; one shared by two
different options names neither and counts for none. The record is
``{"probs": {letter: p_i / mass}, "mass": sum_i p_i}``: the distribution is conditional on naming
one option, ``mass`` says how much probability went to naming any option at all. A question whose
mass is 0 (every sequence underflowed) has no distribution and is ``None``.

Limits: the letter event counts the letter token whatever follows it (``"B: ..."`` and ``"B"`` alike
name B, but so would a non-canonical ``"B" + "asal ..."``); option texts are matched with their own
spelling and case (``"Melanoma"`` is not ``"melanoma"``); and the response is re-tokenized from its
decoded text, which may differ from the tokens the model actually sampled.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping, Sequence

from skinr1.rewards import FINAL, THINK

OPEN_FINAL = f"<{FINAL}>"
CLOSE_THINK = f"</{THINK}>"

Seq = tuple[Hashable, ...]


# --- answer position ----------------------------------------------------------------------------
def answer_prefix(response: str) -> str | None:
    """The response up to the point where the option is named, or None when it has no such point
    (scoring a response that never reached an answer would invent one)."""
    i = response.find(OPEN_FINAL)
    if i >= 0:
        return response[: i + len(OPEN_FINAL)]
    i = response.find(CLOSE_THINK)
    if i >= 0:
        return response[: i + len(CLOSE_THINK)] + " " + OPEN_FINAL
    return None


# --- the probability algebra (pure) ---------------------------------------------------------------
def _extends(long: Seq, short: Seq) -> bool:
    return len(long) > len(short) and long[: len(short)] == short


def option_masses(names: Sequence[tuple[str, Sequence[Hashable]]],
                  seq_probs: Mapping[Seq, float]) -> dict[str, float]:  # fmt: skip
    """Unnormalised ``p_i`` per letter from the naming sequences ``names`` (``(letter, tokens)``
    pairs, letter and text of every option) and ``seq_probs[tokens] = P(tokens after the prefix)``.

    Each sequence's probability is reduced by that of its shortest strict extensions, so that the
    events summed are disjoint (see the module docstring)."""
    owners: dict[Seq, set[str]] = {}
    masses: dict[str, float] = {}
    for letter, seq in names:
        seq = tuple(seq)
        if not seq:
            raise ValueError(f"option {letter}: a naming sequence with no tokens")
        owners.setdefault(seq, set()).add(letter)
        masses.setdefault(letter, 0.0)
    for s, who in owners.items():
        longer = [t for t in owners if _extends(t, s)]
        shortest = [t for t in longer if not any(_extends(t, u) for u in longer)]
        p = seq_probs[s] - math.fsum(seq_probs[t] for t in shortest)
        if len(who) == 1:  # a sequence naming two options names neither
            (letter,) = who
            masses[letter] += max(p, 0.0)  # rounding can leave -1e-17
    return masses


def distribution(masses: Mapping[str, float]) -> dict | None:
    """``{"probs": normalised masses, "mass": their sum}``, or None when nothing was named."""
    mass = math.fsum(masses.values())
    if not mass > 0:
        return None
    return {"probs": {k: v / mass for k, v in masses.items()}, "mass": mass}


# --- tokens ---------------------------------------------------------------------------------------
def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def continuation_tokens(tokenizer, prefix: str, continuation: str,
                        prefix_ids: list[int] | None = None) -> tuple[list[int], bool]:  # fmt: skip
    """The tokens ``continuation`` adds after ``prefix``, and whether BPE merged across the
    boundary (then the continuation is tokenized alone: the prefix tokens must stay those the
    model is conditioned on)."""
    prefix_ids = _ids(tokenizer, prefix) if prefix_ids is None else prefix_ids
    joint = _ids(tokenizer, prefix + continuation)
    if joint[: len(prefix_ids)] == prefix_ids and len(joint) > len(prefix_ids):
        return joint[len(prefix_ids) :], False
    return _ids(tokenizer, continuation), True


# --- the model --------------------------------------------------------------------------------------
def _batch(model, jobs: list[tuple], pad_id: int, device) -> list[tuple[list[float], object]]:
    """Per job ``(question, encoding, continuation)``: the log-probability of each continuation
    token after the encoded prefix, and the log-distribution of the token after the prefix (the
    single-token sequences are read off it). Left padding, so the positions needed are the last
    ones and only those logits are computed (a 7B model's full logits would not fit)."""
    import torch

    rows = []
    for _, enc, cont in jobs:
        n = enc["input_ids"].shape[1]
        cont_t = torch.tensor(cont, dtype=enc["input_ids"].dtype)
        row = {"input_ids": torch.cat([enc["input_ids"][0], cont_t]),
               "attention_mask": torch.ones(n + len(cont), dtype=torch.long)}  # fmt: skip
        for k, v in enc.items():  # per-token extras (mm_token_type_ids): text after the prefix
            if k not in row and torch.is_tensor(v) and v.ndim == 2 and tuple(v.shape) == (1, n):
                row[k] = torch.cat([v[0], torch.zeros(len(cont), dtype=v.dtype)])
        rows.append(row)
    width = max(r["input_ids"].shape[0] for r in rows)
    inputs = {}
    for k in rows[0]:
        fill = pad_id if k == "input_ids" else 0
        inputs[k] = torch.stack([
            torch.cat([torch.full((width - r[k].shape[0],), fill, dtype=r[k].dtype), r[k]])
            for r in rows
        ])  # fmt: skip
    for k, v in jobs[0][1].items():  # images: pixel_values, image_grid_thw, in row order
        if k not in inputs and torch.is_tensor(v):
            inputs[k] = torch.cat([enc[k] for _, enc, _ in jobs])
    keep = max(len(c) for _, _, c in jobs) + 1
    inputs = {k: v.to(device) for k, v in inputs.items()}
    logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits[:, -keep:]
    logp = logits.double().log_softmax(-1).cpu()
    out = []
    for b, (_, _, cont) in enumerate(jobs):
        # token k of the continuation sits at width - len + k, predicted one position earlier
        pos = torch.arange(len(cont)) + keep - 1 - len(cont)
        out.append((logp[b, pos, torch.tensor(cont, dtype=torch.long)].tolist(),
                    logp[b, keep - 1 - len(cont)]))  # fmt: skip
    return out


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for it in items:
        chunk.append(it)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def sequence_probabilities(model, processor, rows: list[dict], responses: list[str], *,
                           prompt_style: str = "paper", batch_size: int = 16) -> list[dict | None]:  # fmt: skip
    """Per question, its naming sequences and their probabilities after the answer prefix:
    ``{"names": [(letter, tokens), ...], "seq_probs": {tokens: P}}``, or None when unscored.
    ``option_probabilities`` reduces this; it is public so that the raw numbers can be checked.

    One forward pass per sequence that is not the start of another naming sequence of the same
    question (a letter is read off any of them at the prefix's last position), ``batch_size``
    sequences at a time, on the model's device, without gradients."""
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from skinr1.evaluation import prompt_for
    from skinr1.prompts import user_message

    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} rows but {len(responses)} responses")
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: must be at least 1")
    tok = processor.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    image_id = getattr(model.config, "image_token_id", None)
    device = next(model.parameters()).device
    plans: list[tuple | None] = [None] * len(rows)

    def jobs() -> Iterator[tuple]:
        # disable=None: a bar on a terminal, none in an executed report or a log file
        pairs = tqdm(list(zip(rows, responses, strict=True)), desc="confidence", leave=False,
                     disable=None)  # fmt: skip
        for q, (row, response) in enumerate(pairs):
            prefix = answer_prefix(response)
            if prefix is None:
                continue
            chat = processor.apply_chat_template(user_message(prompt_for(row, prompt_style),
                                                              prompt_style),
                                                 add_generation_prompt=True, tokenize=False)  # fmt: skip
            text = chat + prefix
            text_ids = _ids(tok, text)
            names = []
            for letter, option in zip(row["letters"], row["options"], strict=True):
                for cont in (letter, option):
                    names.append((letter, tuple(continuation_tokens(tok, text, cont, text_ids)[0])))
            seqs = {s for _, s in names}
            # One pass per longest multi-token sequence; single tokens (the letters, one-token
            # names) are read at the prefix's last position, which every pass has; none: one
            # pass with no continuation.
            runs = sorted(s for s in seqs if len(s) > 1 and not any(_extends(t, s) for t in seqs))
            runs = runs or [()]
            plans[q] = (names, runs)
            with Image.open(row["image"]) as im:
                image = im.convert("RGB")
            enc = processor(text=[text], images=[image], return_tensors="pt")
            # The forward pass appends token ids to the processor's prefix: its text tail (after
            # the image) must be the tokenizer's, or the positions would be misread.
            ids = enc["input_ids"][0].tolist()
            tail = len(text_ids)
            if image_id is not None and image_id in text_ids:
                tail -= max(i for i, t in enumerate(text_ids) if t == image_id) + 1
            if tail and ids[-tail:] != text_ids[-tail:]:
                raise RuntimeError(f"question {row.get('id', q)}: the processor tokenizes the "
                                   "prefix differently from its tokenizer")  # fmt: skip
            for run in runs:
                yield q, enc, run

    logps: dict[tuple[int, Seq], list[float]] = {}
    first: dict[int, object] = {}  # question -> log-distribution of the token after the prefix
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for chunk in _chunks(jobs(), batch_size):
                lps = _batch(model, chunk, pad_id, device)
                for (q, _, run), (lp, head) in zip(chunk, lps, strict=True):
                    logps[q, run] = lp
                    first.setdefault(q, head)
    finally:
        model.train(was_training)

    out: list[dict | None] = []
    for q, plan in enumerate(plans):
        if plan is None:
            out.append(None)
            continue
        names, runs = plan
        seq_probs = {}
        for s in {s for _, s in names}:
            if len(s) == 1:
                seq_probs[s] = math.exp(float(first[q][s[0]]))
                continue
            run = next(r for r in runs if r[: len(s)] == s)
            seq_probs[s] = math.exp(math.fsum(logps[q, run][: len(s)]))
        out.append({"names": names, "seq_probs": seq_probs})
    return out


def option_probabilities(model, processor, rows: list[dict], responses: list[str], *,
                         prompt_style: str = "paper", batch_size: int = 16) -> list[dict | None]:  # fmt: skip
    """Per question ``{"probs": {letter: p}, "mass": m}`` at the answer position of ``responses``
    (as ``answer_questions`` produced them for ``rows``), or None where it is not scored."""
    seqs = sequence_probabilities(model, processor, rows, responses, prompt_style=prompt_style,
                                  batch_size=batch_size)  # fmt: skip
    return [None if s is None else distribution(option_masses(s["names"], s["seq_probs"]))
            for s in seqs]  # fmt: skip
