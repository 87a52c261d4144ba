"""Multiple-choice questions built from sample records and the knowledge base (Appendix A, §4.3).

Every question type (in-distribution disease, lesion condition, DDx, hierarchical, OOD) becomes one
``Question``: lettered options, the correct letter, and a per-letter score that R_gran (Eq. 7)
looks up. ``Question.to_row`` flattens it into uniform columns for a ``datasets.Dataset``; the
reward functions in ``skinr1.rewards`` read those columns back as TRL keyword arguments.

A question also carries its sample's ``skin_type`` and annotated ``features`` (None where the
dataset records none), so evaluation can score fairness by skin type and the faithfulness of
stated features per question without going back to the samples.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from skinr1.prompts import LESION_OPTIONS, QUESTION, format_question

# The question line of the Appendix D lesion-condition prompt (prompts.LESION_PROMPT embeds it).
LESION_QUESTION = (
    "What type of lesion condition (benign, malignant or precancerous in situ) is present in this "
    "image?"
)
KINDS = ("disease", "lesion", "ddx", "hierarchical", "ood")
GRANULARITY_NORMS = ("sampled", "path", "finest")
MAX_GRAN = 0.75  # R_gran of the finest correct option (Eq. 7)


@dataclass
class Question:
    id: str
    image: str
    dataset: str
    node: str
    path: tuple[str, ...]
    malignancy: str
    options: dict[str, str]  # letter -> option text, in letter order
    answer: str
    scores: dict[str, float]  # letter -> R_gran (or 1/0 where the kind has no hierarchy)
    kind: str
    question: str
    # Options the builder wanted but the knowledge base could not supply (0 = full question).
    missing_options: int = 0
    skin_type: int | None = None  # Fitzpatrick 1-6 of the image (Sample.skin_type)
    features: tuple[str, ...] | None = None  # annotated visual features (Sample.features)

    @property
    def letters(self) -> list[str]:
        return list(self.options)

    @property
    def answer_text(self) -> str:
        return self.options[self.answer]

    def to_row(self) -> dict:
        """Uniform, Arrow-friendly columns: lists aligned with ``letters`` instead of dicts."""
        letters = list(self.options)
        return {
            "id": self.id,
            "image": self.image,
            "dataset": self.dataset,
            "node": self.node,
            "path": list(self.path),
            "malignancy": self.malignancy,
            "letters": letters,
            "options": [self.options[k] for k in letters],
            "scores": [float(self.scores[k]) for k in letters],
            "answer": self.answer,
            "kind": self.kind,
            "question": self.question,
            "missing_options": self.missing_options,
            "skin_type": self.skin_type,
            "features": None if self.features is None else list(self.features),
        }


def row_features():
    """``datasets.Features`` of ``to_row``; pass it when no row may have a path (OOD-only sets)
    or no row a skin type or features (Arrow would infer a null column)."""
    import datasets

    s = datasets.Value("string")
    return datasets.Features(
        {
            "id": s,
            "image": s,
            "dataset": s,
            "node": s,
            "path": datasets.Sequence(s),
            "malignancy": s,
            "letters": datasets.Sequence(s),
            "options": datasets.Sequence(s),
            "scores": datasets.Sequence(datasets.Value("float64")),
            "answer": s,
            "kind": s,
            "question": s,
            "missing_options": datasets.Value("int64"),
            "skin_type": datasets.Value("int64"),
            "features": datasets.Sequence(s),
        }
    )


# --- helpers ----------------------------------------------------------------------------------
def _letters(n: int) -> list[str]:
    if n > len(string.ascii_uppercase):
        raise ValueError(f"n_options={n}: at most {len(string.ascii_uppercase)} options (A-Z)")
    return list(string.ascii_uppercase[:n])


def _check_n_options(n_options: int) -> None:
    if not isinstance(n_options, int) or n_options < 2:
        raise ValueError(f"n_options must be an integer >= 2, got {n_options!r}")
    _letters(n_options)


def _checked_path(sample, taxonomy) -> tuple[str, ...]:
    """The sample's path without the root; a record stale against the taxonomy is an error."""
    if sample.node not in taxonomy:
        raise ValueError(
            f"sample {sample.id!r}: node {sample.node!r} is not in {taxonomy.source}; rebuild the "
            "samples with the taxonomy they were mapped against"
        )
    path = tuple(n for n in sample.path if n != taxonomy.root)
    if list(path) != taxonomy.path(sample.node):
        raise ValueError(
            f"sample {sample.id!r}: path {list(sample.path)} differs from the taxonomy's "
            f"{taxonomy.path(sample.node)} for {sample.node!r}; rebuild the samples with the "
            "current taxonomy"
        )
    return path


def _path_scores(options: Iterable[str], path: Sequence[str]) -> dict[str, float]:
    """Eq. 7 with the paper's w_i = i / L: on-path depth i earns 0.75 i / L, off-path 0."""
    depth = {n: i + 1 for i, n in enumerate(path)}
    return {o: MAX_GRAN * depth[o] / len(path) if o in depth else 0.0 for o in options}


def _annotations(item) -> dict:
    """The ``skin_type`` and ``features`` of a sample or OOD item (None where it has none)."""
    feats = getattr(item, "features", None)
    return {
        "skin_type": getattr(item, "skin_type", None),
        "features": None if feats is None else tuple(feats),
    }


def _assemble(
    sample,
    path: tuple[str, ...],
    nodes: list[str],
    node_scores: dict[str, float],
    answer_node: str,
    kind: str,
    rng: random.Random,
    n_options: int,
) -> Question:
    rng.shuffle(nodes)
    letters = _letters(len(nodes))
    options = dict(zip(letters, nodes, strict=True))
    return Question(
        id=sample.id,
        image=sample.image,
        dataset=sample.dataset,
        node=sample.node,
        path=path,
        malignancy=sample.malignancy,
        options=options,
        answer=letters[nodes.index(answer_node)],
        scores={k: float(node_scores[v]) for k, v in options.items()},
        kind=kind,
        question=format_question(options, QUESTION),
        missing_options=n_options - len(nodes),
        **_annotations(sample),
    )


# --- question builders ------------------------------------------------------------------------
def disease_question(
    sample,
    taxonomy,
    rng: random.Random,
    *,
    n_options: int = 4,
    n_correct: tuple[int, int] = (1, 3),
    dataset_share: float = 0.5,
    granularity_norm: str = "sampled",
) -> Question:
    """Appendix A: 1-3 options from the ground-truth path, the rest off-path distractors.

    Each distractor slot draws from the sample's dataset label tree with probability
    ``dataset_share``, else from the global tree (falling back to the other when one is used up).
    Distractors are never on the path nor under the label: a finer node than the label cannot be
    verified against the annotation. The answer is the finest on-path option. ``granularity_norm``
    picks w_i = i / L ("path", Eq. 7 as printed) or i / i_max over the sampled on-path options
    ("sampled", the authors' code, so the answer always earns 0.75); "finest" (our ablation, an
    accuracy reward) pays the answer 0.75 and a coarser on-path option nothing.
    """
    if granularity_norm not in GRANULARITY_NORMS:
        raise ValueError(
            f"granularity_norm must be one of {GRANULARITY_NORMS}, got {granularity_norm!r}"
        )
    _check_n_options(n_options)
    lo, hi = n_correct
    if not 1 <= lo <= hi:
        raise ValueError(f"n_correct must be (lo, hi) with 1 <= lo <= hi, got {n_correct!r}")
    if not 0.0 <= dataset_share <= 1.0:
        raise ValueError(f"dataset_share must lie in [0, 1], got {dataset_share!r}")
    path = _checked_path(sample, taxonomy)

    # At least one distractor must remain, so a question never has only correct options.
    k_max = min(hi, len(path), n_options - 1)
    k = rng.randint(min(lo, k_max), k_max)
    correct = rng.sample(list(path), k)

    banned = set(path) | set(taxonomy.descendants(sample.node))
    pools = (
        [n for n in taxonomy.dataset_nodes(sample.dataset) if n not in banned],
        [n for n in taxonomy.categories() if n not in banned],
    )
    distractors: list[str] = []
    for _ in range(n_options - k):
        first = 0 if rng.random() < dataset_share else 1
        for pool in (pools[first], pools[1 - first]):
            left = [n for n in pool if n not in distractors]
            if left:
                distractors.append(rng.choice(left))
                break
        else:
            break  # knowledge base too small: a shorter question, counted in missing_options

    depth = {n: i + 1 for i, n in enumerate(path)}
    answer = max(correct, key=depth.__getitem__)
    if granularity_norm == "finest":
        scores = {n: MAX_GRAN if n == answer else 0.0 for n in correct}
    else:
        norm = len(path) if granularity_norm == "path" else depth[answer]
        scores = {n: MAX_GRAN * depth[n] / norm for n in correct}
    scores.update({n: 0.0 for n in distractors})
    return _assemble(sample, path, correct + distractors, scores, answer, "disease", rng, n_options)


def lesion_question(sample) -> Question:
    """The lesion-condition form of a test instance: fixed A benign / B malignant / C in situ."""
    by_text = {v: k for k, v in LESION_OPTIONS.items()}
    if sample.malignancy not in by_text:
        raise ValueError(
            f"sample {sample.id!r}: malignancy {sample.malignancy!r} is not one of "
            f"{tuple(by_text)}; fix the node's malignancy in taxonomy.yaml"
        )
    answer = by_text[sample.malignancy]
    return Question(
        id=sample.id,
        image=sample.image,
        dataset=sample.dataset,
        node=sample.node,
        path=tuple(sample.path),
        malignancy=sample.malignancy,
        options=dict(LESION_OPTIONS),
        answer=answer,
        scores={k: 1.0 if k == answer else 0.0 for k in LESION_OPTIONS},
        kind="lesion",
        question=format_question(LESION_OPTIONS, LESION_QUESTION),
        **_annotations(sample),
    )


def ddx_question(sample, taxonomy, ddx, rng: random.Random, *, n_options: int = 4):
    """§4.3 DDx set: the label against its G_DDx neighbours; None when it has none.

    Like Algorithm 4, a label without usable neighbours borrows those of its nearest ancestor
    (walking up the whole path, not just one level). Neighbours on the label's own path or under
    it are not distractors (they would be correct or unverifiable).
    """
    _check_n_options(n_options)
    path = _checked_path(sample, taxonomy)
    banned = set(path) | set(taxonomy.descendants(sample.node))
    candidates: list[str] = []
    for anchor in reversed(path):
        candidates = [n for n in ddx.neighbours(anchor) if n not in banned]
        if candidates:
            break
    if not candidates:
        return None
    distractors = rng.sample(candidates, min(n_options - 1, len(candidates)))
    nodes = [sample.node, *distractors]
    return _assemble(
        sample, path, nodes, _path_scores(nodes, path), sample.node, "ddx", rng, n_options
    )


def hierarchical_question(sample, taxonomy, rng: random.Random, *, n_options: int = 4):
    """§4.3 hierarchical set: the label against its whole taxonomy path; None for a top-level
    label.

    Every ancestor is an option (as in the authors' sets), so the question asks for the finest
    node of the path. Where the path is shorter than ``n_options``, the rest are nodes of the
    label's own level that are off its path: its siblings first, then other descendants of its
    ancestors, nearest ancestor first (a top-level category if the tree has no more). Without them
    a two-level label would make a two-option question, answerable at chance by half. Scores
    follow Eq. 7 with w_i = i / L, so an ancestor earns partial credit while accuracy (the
    ``answer``) demands the label itself.
    """
    _check_n_options(n_options)
    path = _checked_path(sample, taxonomy)
    if len(path) < 2:
        return None
    banned = set(path) | set(taxonomy.descendants(sample.node))
    fill: list[str] = []
    pools = [taxonomy.siblings(sample.node)]
    pools += [taxonomy.descendants(a) for a in reversed(path[:-1])]
    pools.append(taxonomy.categories())
    for pool in pools:
        left = [n for n in pool if n not in banned and n not in fill]
        rng.shuffle(left)
        fill += left[: max(n_options - len(path) - len(fill), 0)]
    nodes = [*path, *fill]
    return _assemble(
        sample, path, nodes, _path_scores(nodes, path), sample.node, "hierarchical", rng,
        max(n_options, len(path)),
    )  # fmt: skip


def from_ood(ood_question) -> Question:
    """Adapt an OmniMedVQA item (duck-typed ``OODQuestion``); it has no taxonomy path."""
    options = dict(ood_question.options)
    if ood_question.answer not in options:
        raise ValueError(
            f"OOD question {ood_question.id!r}: answer {ood_question.answer!r} is not one of its "
            f"option letters {list(options)}"
        )
    text = ood_question.question
    # Tolerate a question text that already lists its options, so they are not printed twice.
    if not all(f"{k}: {v}" in text for k, v in options.items()):
        text = format_question(options, text)
    return Question(
        id=str(ood_question.id),
        image=str(ood_question.image),
        dataset=str(ood_question.source),
        node=str(ood_question.answer_text),
        path=(),
        malignancy="",
        options=options,
        answer=ood_question.answer,
        scores={k: 1.0 if k == ood_question.answer else 0.0 for k in options},
        kind="ood",
        question=text,
        **_annotations(ood_question),
    )


# --- question sets ----------------------------------------------------------------------------
def sample_rng(seed: int, sample_id: str) -> random.Random:
    """A per-sample generator from a stable hash, so a question does not depend on list order."""
    digest = hashlib.sha256(f"{seed}\x00{sample_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


_SKIP_REASON = {
    "ddx": "no DDx-graph neighbour for the label or any ancestor",
    "hierarchical": "label is a top-level category (no ancestor)",
}


def build_question_set(
    samples: Iterable, kind: str, taxonomy, ddx, seed: int, **kw
) -> tuple[list[Question], dict]:
    """Questions of one ``kind`` for ``samples`` plus a report of skipped and short questions.

    ``kw`` goes to the builder (``n_options``, ``granularity_norm``...). Deterministic: each
    sample's generator depends only on ``seed`` and ``sample.id``.
    """
    builders = {
        "disease": lambda s, r: disease_question(s, taxonomy, r, **kw),
        "lesion": lambda s, r: lesion_question(s),
        "ddx": lambda s, r: ddx_question(s, taxonomy, ddx, r, **kw),
        "hierarchical": lambda s, r: hierarchical_question(s, taxonomy, r, **kw),
    }
    if kind not in builders:
        raise ValueError(
            f"kind must be one of {tuple(builders)}, got {kind!r} (OOD items go through from_ood)"
        )
    if kind == "lesion" and kw:
        raise ValueError(f"lesion questions have fixed options and take no settings, got {kw}")
    if kind == "ddx" and ddx is None:
        raise ValueError("kind='ddx' needs a DDxGraph: pass ddx=skinr1.ddx.load_ddx(taxonomy)")
    questions: list[Question] = []
    skipped: list[str] = []
    short: list[str] = []
    total = 0
    for sample in samples:
        total += 1
        q = builders[kind](sample, sample_rng(seed, sample.id))
        if q is None:
            skipped.append(sample.id)
            continue
        if q.missing_options:
            short.append(sample.id)
        questions.append(q)
    report = {
        "kind": kind,
        "samples": total,
        "questions": len(questions),
        "skipped": len(skipped),
        "skipped_ids": skipped,
        "skip_reason": _SKIP_REASON.get(kind, "") if skipped else "",
        "short": len(short),
        "short_ids": short,
    }
    return questions, report
