"""SkinRationale: Type 1-3 reasoning trajectories synthesised from textbook cases (Appendix B).

Type 1 (Algorithm 1) states the case's rule and the diagnosis with its hierarchy. Type 2
(Algorithm 2) proposes the case's own diagnosis, compares it with a DDx neighbour and keeps it.
Type 3 (Algorithm 3) starts from a wrong primary hypothesis, compares it with the differential
and revises to the differential. The response text follows the paper's Appendix B examples;
the differential sentence rho comes from a pluggable comparator (deterministic templates by
default, the authors' gpt-4o-mini comparator optionally).

Every trajectory is paired with an image whose true label is the trajectory's final diagnosis.
Algorithm 3 as printed pairs the revision with the primary case's image I_i, which would teach
the model to call that image by a diagnosis that is not its own; by default we pair it with the
differential case's image I_j instead (``type3_image="differential"``, as the authors' code
does); ``"primary"`` reproduces the printed algorithm for ablations and flags each record.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from skinr1.datasets.base import TextbookCase
from skinr1.ddx import DDxGraph, resolve_ddx_neighbor
from skinr1.prompts import SFT_TYPE1, SFT_TYPE23, user_message
from skinr1.rules import RULE_PREFIX, Features, RuleBook
from skinr1.taxonomy import Taxonomy

TYPES = (1, 2, 3)
TYPE3_IMAGES = ("differential", "primary")
MAX_SIBLINGS = 3  # siblings named by the optional sibling completion
MAX_FEATURES = 3  # features per side named by the template comparator
COMPACT_FEATURES = 2  # features named by a compact trajectory's rule or comparison
NO_ALTERNATIVE = "no alternative diagnosis with cases off the primary's taxonomy path"


# --- hierarchical diagnosis completion (Section 3.1) ------------------------------------------
def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def hierarchy_text(node: str, taxonomy: Taxonomy, *, siblings: bool = False) -> str:
    """The completion sentence of the paper's examples, ancestors nearest first.

    'Bowen disease of the nail unit is a subtype of bowen disease, and squamous cell carcinoma,
    and is generally classified as malignant.'  /  'Melanoma is generally classified as
    malignant.'  With ``siblings`` (the paper's text mentions sibling nodes; its examples and
    the authors' code do not) a second sentence names up to MAX_SIBLINGS sibling subtypes.
    """
    ancestors = taxonomy.ancestors(node)[::-1]
    text = _sentence_case(node)
    if ancestors:
        if len(ancestors) == 1:
            text += f" is a subtype of {ancestors[0]}, and"
        else:
            text += f" is a subtype of {', '.join(ancestors[:-1])}, and {ancestors[-1]}, and"
    text += f" is generally classified as {taxonomy.malignancy(node)}."
    if siblings and ancestors:
        sibs = taxonomy.siblings(node)[:MAX_SIBLINGS]
        if sibs:
            text += f" Other subtypes of {ancestors[0]} include {_join(sibs)}."
    return text


def _sentence(text: str) -> str:
    """Whitespace collapsed and a closing full stop, so that sentences can be concatenated."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if not text or text[-1] in ".!?\"'" else text + "."


# --- responses (Appendix B examples) ----------------------------------------------------------
def type1_response(
    rationale: str, diagnosis: str, taxonomy: Taxonomy, *, siblings: bool = False
) -> str:
    """'<thinking>{r}</thinking> <diagnosis>{d}, {hierarchy}</diagnosis>' (the Type 1 example)."""
    hier = hierarchy_text(diagnosis, taxonomy, siblings=siblings)
    return f"<thinking>{_sentence(rationale)}</thinking> <diagnosis>{diagnosis}, {hier}</diagnosis>"


def split_rationale(text: str) -> tuple[str, str]:
    """(findings, rule) of a textbook rationale: the sentences that state a diagnostic rule
    ("Presence of ... indicates ...") and the rest, what the case's image shows. A rationale
    without a rule sentence is all findings."""
    sentences = re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text).strip())
    rule = [x for x in sentences if x.startswith(RULE_PREFIX)]
    findings = [x for x in sentences if x and not x.startswith(RULE_PREFIX)]
    return " ".join(findings), " ".join(rule)


def ddx_thinking(
    r_p: str, d_p: str, r_d: str, d_d: str, rho: str, final: str, findings: str = ""
) -> str:
    """The reasoning of the Type 2/3 examples: the shown image's findings, the rule of d_p, the
    primary, the rule of d_d, rho and the conclusion."""
    seen = f"{_sentence(findings)} " if findings.strip() else ""
    return (
        f"{seen}Based on the rule: {_sentence(r_p)} We can give a primary diagnosis that {d_p}. "
        f"Considering the differential diagnosis for {d_p}, namely {d_d}, we compare against "
        f"the diagnostic rule for {d_d}: {_sentence(r_d)} {_sentence(rho)} "
        f'Therefore, the most likely condition corresponds to "{final}".'
    )


def ddx_response(thinking: str, final: str, taxonomy: Taxonomy, *, siblings: bool = False) -> str:
    # The printed Type 3 example lacks the opening <thinking>; that is a typo, we always emit it.
    hier = hierarchy_text(final, taxonomy, siblings=siblings)
    return f"<thinking> {thinking} </thinking> <diagnosis>{final}. {hier}</diagnosis>"


# --- comparators: rho = LLM(r_p, r_d, target) -------------------------------------------------
class Comparator(Protocol):
    """Writes the differential reasoning rho that argues for ``target``.

    ``target`` is the primary diagnosis for Type 2 (keep) and the differential for Type 3
    (revise); ``r_p``/``r_d`` are the two cases' rationales.
    """

    def __call__(
        self, r_p: str, r_d: str, target: str, *, primary: str, differential: str
    ) -> str: ...


class ComparatorError(RuntimeError):
    """The comparator cannot run (missing API key or package); the message says what to do."""


def _other(target: str, primary: str, differential: str) -> str:
    if target == primary:
        return differential
    if target == differential:
        return primary
    raise ValueError(f"target {target!r} must be the primary {primary!r} or the differential")


def feature_phrases(f: Features) -> tuple[list[str], list[str]]:
    """(phrases, single-valued phrases) of a rule's features, most discriminating first.

    Dermoscopic structures lead because they separate look-alikes best; the single-valued
    attributes always carry a value (a default when the rule is silent), so they are returned
    apart and only used where the two rules differ.
    """
    listed = [
        *f.structures,
        *(f"{s} surface" for s in f.surface),
        *(f"{c} colour" for c in f.colours),
    ]
    single = [
        f"{f.symmetry} shape",
        f"{f.border} border",
        f"{f.elevation} profile",
        f"{f.size} size",
    ]
    return listed, single


def rule_features(rules: RuleBook, taxonomy: Taxonomy, node: str) -> list[str]:
    """The node's rule (or its nearest ancestor's) as its most discriminating features; [] for a
    node without one."""
    try:
        f = rules.rule_for(node, taxonomy).features
    except KeyError:
        return []
    listed, single = feature_phrases(f)
    return (listed or single)[:COMPACT_FEATURES]


def decisive_features(rules: RuleBook, taxonomy: Taxonomy, target: str, other: str) -> list[str]:
    """Features of target's rule that other's rule lacks, most discriminating first (what decides
    between the two); [] when either has no rule or nothing separates them."""
    try:
        ft = rules.rule_for(target, taxonomy).features
        fo = rules.rule_for(other, taxonomy).features
    except KeyError:
        return []
    return contrast(ft, fo)[0][:COMPACT_FEATURES]


def contrast(ft: Features, fo: Features) -> tuple[list[str], list[str], list[str]]:
    """(present, absent, shared) phrases of rule ``ft`` against rule ``fo``: what only ft has
    (single-valued attributes where they differ), what only fo has, and what both list."""
    own_l, own_s = feature_phrases(ft)
    oth_l, oth_s = feature_phrases(fo)
    diff_s = [(a, b) for a, b in zip(own_s, oth_s, strict=True) if a != b]
    present = [p for p in own_l if p not in oth_l] + [a for a, _ in diff_s]
    absent = [p for p in oth_l if p not in own_l] + [b for _, b in diff_s]
    return present, absent, [p for p in own_l if p in oth_l]


class TemplateComparator:
    """Deterministic rho from the two rules' structured features and the DDx edge text.

    'The lesion shows X and Y, consistent with <target>. In contrast, the features typical of
    <other>, such as Z, are absent. Distinguishing features: <ddx.yaml line>.'  No LLM.
    """

    def __init__(self, taxonomy: Taxonomy, ddx: DDxGraph, rules: RuleBook):
        self.taxonomy, self.ddx, self.rules = taxonomy, ddx, rules
        self.missing_rules: Counter = Counter()  # diagnoses without any rule: generic rho

    @property
    def stats(self) -> dict:
        return {"missing_rules": dict(self.missing_rules)}

    def edge_text(self, a: str, b: str) -> str | None:
        """The discriminator of the most specific DDx edge between a's and b's paths.

        Algorithm 4 may pair through a parent's edge or a neighbour's descendant, so the edge
        that motivated the pair can sit on the ancestors of either end.
        """
        for x in reversed(self.taxonomy.path(a)):
            for y in reversed(self.taxonomy.path(b)):
                if frozenset((x, y)) in self.ddx.edges:
                    return self.ddx.discriminator(x, y)
        return None

    def __call__(self, r_p: str, r_d: str, target: str, *, primary: str, differential: str) -> str:
        other = _other(target, primary, differential)
        found = {}
        for node in (target, other):
            try:
                found[node] = self.rules.rule_for(node, self.taxonomy).features
            except KeyError:
                self.missing_rules[node] += 1
        if len(found) < 2:  # the authors' own fallback sentence when no comparison is possible
            return f"The visible clinical features better fit {target} than {other}."
        present, absent, shared = contrast(found[target], found[other])
        parts = []
        if present:
            parts.append(
                f"The lesion shows {_join(present[:MAX_FEATURES])}, consistent with {target}."
            )
        else:
            parts.append(f"The lesion's features are compatible with {target}.")
        if absent:
            parts.append(
                f"In contrast, the features typical of {other}, such as "
                f"{_join(absent[:MAX_FEATURES])}, are absent."
            )
        elif present:
            parts.append(
                f"All features typical of {other} are also seen in {target}, so the additional "
                f"findings favour {target}."
            )
        else:
            parts.append(f"The described features alone do not separate {target} from {other}.")
        if shared:
            parts.append(
                f"Both can show {_join(shared[:MAX_FEATURES])}, so these do not discriminate."
            )
        line = self.edge_text(primary, differential)
        if line:
            parts.append(f"Distinguishing features: {_sentence(line)}")
        return " ".join(parts)


class OpenAIComparator:
    """The authors' comparator: an OpenAI chat model (gpt-4o-mini, T=0.2, 120 tokens).

    Not used by default. The key is read only from the OPENAI_API_KEY environment variable,
    and only on a cache miss: answers are cached on disk under a hash of (model, prompt), so a
    rerun is free, needs no key and returns the same text.
    """

    SYSTEM = "You are a concise, professional dermatology assistant."

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        base_url: str | None = None,
        temperature: float = 0.2,
        max_tokens: int = 120,
        cache_dir: str | Path | None = None,
    ):
        self.model, self.base_url = model, base_url
        self.temperature, self.max_tokens = temperature, max_tokens
        self.cache_dir = Path(cache_dir or Path.home() / ".cache" / "skinr1" / "comparator")
        self._client = None
        self.calls = 0  # API calls made (cache misses)
        self.hits = 0

    @property
    def stats(self) -> dict:
        return {"api_calls": self.calls, "cache_hits": self.hits, "model": self.model}

    def prompt(self, r_p: str, r_d: str, target: str, *, primary: str, differential: str) -> str:
        keep = _other(target, primary, differential) == differential
        favoured, rejected = ("first", "second") if keep else ("second", "first")
        return (
            "Two diagnostic rules from a dermatology textbook describe possible diagnoses of the "
            "same skin lesion. Compare them using only the visible clinical features (ignore "
            f"histology and laboratory findings). Explain why the {favoured} rule fits the case "
            f"better, so that the diagnosis is {target}: name the features of {target} that are "
            f"present and the key features of the {rejected} rule that are absent or "
            "inconsistent. Be specific and answer in two or three sentences of plain text.\n"
            f"First rule (diagnosis: {primary}): {r_p}\n"
            f"Second rule (diagnosis: {differential}): {r_d}"
        )

    def _cache_path(self, prompt: str) -> Path:
        key = hashlib.sha256(json.dumps([self.model, self.SYSTEM, prompt]).encode()).hexdigest()
        return self.cache_dir / f"{key}.json"

    def _get_client(self):
        if self._client is None:
            key = os.environ.get("OPENAI_API_KEY")
            if not key:
                raise ComparatorError(
                    "OpenAIComparator: set the OPENAI_API_KEY environment variable (the key is "
                    "read from nowhere else), or use TemplateComparator, which needs no API"
                )
            try:
                import openai
            except ImportError:
                raise ComparatorError(
                    "OpenAIComparator needs the 'openai' package: pip install openai"
                ) from None
            self._client = openai.OpenAI(api_key=key, base_url=self.base_url)
        return self._client

    def __call__(self, r_p: str, r_d: str, target: str, *, primary: str, differential: str) -> str:
        prompt = self.prompt(r_p, r_d, target, primary=primary, differential=differential)
        path = self._cache_path(prompt)
        if path.exists():
            self.hits += 1
            return json.loads(path.read_text(encoding="utf-8"))["response"]
        resp = self._get_client().chat.completions.create(
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            messages=[
                {"role": "system", "content": self.SYSTEM},
                {"role": "user", "content": prompt},
            ],
        )
        self.calls += 1
        text = re.sub(r"</?[^<>]{1,60}>", "", resp.choices[0].message.content or "")
        text = re.sub(r"\s+", " ", text).strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        record = {"model": self.model, "prompt": prompt, "response": text}
        tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # atomic, so an interrupted run never leaves half an entry
        return text


# --- synthesis (Algorithms 1-3) ---------------------------------------------------------------
@dataclass(frozen=True)
class Trajectory:
    id: str
    type: int
    image: str  # path of the image the trajectory is trained on
    prompt: str
    response: str  # the full assistant text
    primary: str  # d_p (d_i for Type 1)
    differential: str | None  # d_d; None for Type 1
    final: str  # d_f
    path: tuple[str, ...]  # taxonomy path of d_f
    malignancy: str  # of d_f
    rationale: str  # the chain of thought (text inside <thinking>)
    image_case: str  # id of the case whose image is used
    image_label: str  # that case's true diagnosis
    differential_case: str | None = None
    ddx_source: str | None = None  # "graph" (Algorithm 4) or "random" (fallback sampling)
    label_mismatch: bool = False  # only the type3_image="primary" ablation sets it
    findings: str = ""  # what the shown image's case records it shows (no rule)
    compact: str = ""  # the same reasoning in the compact format (``compact_response``)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = list(self.path)
        return d


def _related(a: str, b: str, taxonomy: Taxonomy) -> bool:
    return a in taxonomy.path(b) or b in taxonomy.path(a)


def _check_cases(
    cases: Iterable[TextbookCase], taxonomy: Taxonomy
) -> tuple[list[TextbookCase], list[dict]]:
    """Usable cases, and one skip record per unusable one; inconsistent input raises."""
    usable, skips, ids, labels = [], [], set(), {}
    for case in cases:
        if case.id in ids:
            raise ValueError(f"textbook cases: duplicate case id {case.id!r}; ids must be unique")
        ids.add(case.id)
        if case.diagnosis not in taxonomy or case.diagnosis == taxonomy.root:
            reason = "diagnosis is not a taxonomy node"
        elif not case.rationale.strip():
            reason = "empty rationale"
        elif not Path(case.image).is_file():
            reason = "image file not found"
        else:
            reason = ""
        if reason:
            skips.append({"case": case.id, "type": None, "reason": reason})
            continue
        seen = labels.setdefault(case.image, (case.id, case.diagnosis))
        if seen[1] != case.diagnosis:
            raise ValueError(
                f"textbook cases {seen[0]!r} and {case.id!r} share image {case.image} but are "
                f"labelled {seen[1]!r} and {case.diagnosis!r}; one image needs one label"
            )
        usable.append(case)
    return usable, skips


def synthesize(
    cases: Sequence[TextbookCase],
    taxonomy: Taxonomy,
    ddx: DDxGraph,
    rules: RuleBook,
    comparator: Comparator,
    *,
    seed: int,
    types: Iterable[int] = TYPES,
    per_case: dict[int, int] | None = None,
    type3_image: str = "differential",
    siblings: bool = False,
) -> tuple[list[Trajectory], dict]:
    """SkinRationale trajectories of the given types, and a report of what happened.

    ``per_case[t]`` trajectories of type t are drawn per textbook case (default 1). A
    differential comes from Algorithm 4; if it returns None, or a node on d_p's own taxonomy
    path (not an alternative to d_p), one is sampled uniformly from the other diagnoses that
    have cases. Each type draws from its own seeded stream, so the output is a function of
    ``seed`` and adding or removing a type leaves the others unchanged. Types 2-3 open with the
    findings of the image they are trained on and quote the rules of d_p and d_d (``rule_of``),
    never another case's image description. ``rules`` also gives the compact format its
    features.
    """
    types = tuple(types)
    if not types or set(types) - set(TYPES) or len(set(types)) != len(types):
        raise ValueError(f"types must be distinct values from {TYPES}, got {types}")
    if type3_image not in TYPE3_IMAGES:
        raise ValueError(f"type3_image must be one of {TYPE3_IMAGES}, got {type3_image!r}")
    per_case = {t: 1 for t in types} | dict(per_case or {})
    bad = {t: n for t, n in per_case.items() if t not in types or not isinstance(n, int) or n < 0}
    if bad:
        raise ValueError(f"per_case must map types {types} to counts >= 0, got {bad}")

    usable, skips = _check_cases(cases, taxonomy)
    by_diag: dict[str, list[TextbookCase]] = {}
    for case in usable:
        by_diag.setdefault(case.diagnosis, []).append(case)
    label_of = {c.image: c.diagnosis for c in usable}

    out: list[Trajectory] = []
    rule_sources: Counter = Counter()
    book = _Book(taxonomy, rules, rule_sources)
    fallbacks = {
        t: Counter(graph=0, alg4_none=0, on_path_rejected=0, random=0) for t in types if t != 1
    }
    for t in types:
        # String seeds hash through SHA-512, so streams are stable across runs and platforms.
        rng = random.Random(f"skinrationale-{seed}-type{t}")
        seen: set[tuple[str, str]] = set()
        for case in usable:
            for k in range(per_case[t]):
                if t == 1:
                    out.append(_type1(case, k, book, siblings))
                    continue
                d_p = case.diagnosis
                d_d = resolve_ddx_neighbor(d_p, ddx, taxonomy, by_diag, rng)
                source = "graph"
                if d_d is not None and _related(d_d, d_p, taxonomy):
                    fallbacks[t]["on_path_rejected"] += 1
                    d_d = None
                elif d_d is None:
                    fallbacks[t]["alg4_none"] += 1
                if d_d is None:
                    pool = [d for d in by_diag if not _related(d, d_p, taxonomy)]
                    if not pool:
                        skips.append({"case": case.id, "type": t, "reason": NO_ALTERNATIVE})
                        continue
                    d_d, source = rng.choice(pool), "random"
                fallbacks[t][source] += 1
                other = rng.choice(by_diag[d_d])
                if (case.id, other.id) in seen:
                    skips.append({"case": case.id, "type": t, "reason": "duplicate pair"})
                    continue
                seen.add((case.id, other.id))
                out.append(
                    _ddx_trajectory(t, case, other, source, comparator, book, type3_image, siblings)
                )

    report = {
        "seed": seed,
        "types": list(types),
        "per_case": dict(per_case),
        "type3_image": type3_image,
        "cases": len(cases),
        "usable_cases": len(usable),
        "diagnoses_with_cases": len(by_diag),
        "counts": {t: sum(tr.type == t for tr in out) for t in types},
        "fallbacks": {t: dict(c) for t, c in fallbacks.items()},
        "skips": skips,
        "skip_counts": dict(Counter(s["reason"] for s in skips)),
        "label_mismatch": sum(tr.label_mismatch for tr in out),
        # where the rules Types 2-3 quote came from: the case's own rule sentence, the rule
        # book, or (neither having one) the case's whole rationale, as the paper does
        "rule_sources": dict(rule_sources),
        "comparator": type(comparator).__name__,
        "comparator_stats": getattr(comparator, "stats", None),
    }
    if report["label_mismatch"]:
        report["warning"] = (
            f"{report['label_mismatch']} Type 3 trajectories pair the primary case's image with "
            "a final diagnosis that is not its label (type3_image='primary', ablation only)"
        )
    # The invariant the Type 3 pairing exists for; cheap enough to check on every run.
    broken = [tr.id for tr in out if not tr.label_mismatch and label_of[tr.image] != tr.final]
    if broken:
        raise RuntimeError(
            f"trajectories whose final diagnosis is not their image's label: {broken}"
        )
    return out, report


class _Book:
    """The taxonomy and rule book as synthesis uses them, counting where each quoted rule came
    from."""

    def __init__(self, taxonomy: Taxonomy, rules: RuleBook, sources: Counter):
        self.taxonomy, self.rules, self.sources = taxonomy, rules, sources

    def rule_of(self, case: TextbookCase) -> str:
        """The rule of the case's diagnosis: its own rule sentence, else the rule book's (the
        node's or its nearest ancestor's), else its whole rationale (the paper's r_i)."""
        own = split_rationale(case.rationale)[1]
        if own:
            self.sources["case"] += 1
            return own
        try:
            text = self.rules.rule_for(case.diagnosis, self.taxonomy).text
            self.sources["rule book"] += 1
            return text
        except KeyError:
            self.sources["rationale"] += 1
            return case.rationale


def _what_is_seen(findings: str) -> str:
    """The findings without how the picture was taken ("Dermoscopy of ... skin shows a"): the
    compact format spends its tokens on the lesion."""
    text = re.sub(r"^[^.;]*?\bshows\s+(?:an?\s+)?", "", findings.strip(), count=1)
    return _sentence_case(_sentence(text)) if text else ""


def compact_response(findings: str, final: str, taxonomy: Taxonomy, rules: RuleBook, *,
                     primary: str | None = None, differential: str | None = None) -> str:  # fmt: skip
    """A trajectory short enough for the tiny model's completion budget that keeps its parts:
    the image's findings; for Type 1 the rule of the diagnosis as its key features, for Types 2-3
    the primary, the differential and the features that decide between them; the hierarchical
    completion and the lesion condition. E.g. ``<thinking>Symmetric flat lesion ... Primary
    actinic keratosis; versus porokeratosis, keratotic surface and light brown colour indicate
    porokeratosis, a subtype of benign keratosis-like lesion.</thinking> <diagnosis>
    porokeratosis, benign</diagnosis>``."""
    seen = _what_is_seen(findings)
    if primary is None:
        feats = rule_features(rules, taxonomy, final)
        reason = f"Rule: {_join(feats) or 'the findings'} indicate {final}"
    else:
        other = _other(final, primary, differential)
        feats = decisive_features(rules, taxonomy, final, other)
        reason = (
            f"Primary {primary}; versus {differential}, {_join(feats) or 'the findings'} indicate "
            f"{final}"
        )
    ancestors = taxonomy.ancestors(final)[::-1]
    hier = f", a subtype of {_join(ancestors)}" if ancestors else ""
    thinking = f"{seen} {reason}{hier}." if seen else f"{reason}{hier}."
    return (
        f"<thinking>{thinking}</thinking> <diagnosis>{final}, {taxonomy.malignancy(final)}"
        "</diagnosis>"
    )


def _type1(case: TextbookCase, k: int, book: _Book, siblings: bool) -> Trajectory:
    d, taxonomy = case.diagnosis, book.taxonomy
    findings = split_rationale(case.rationale)[0]
    return Trajectory(
        id=f"t1-{case.id}" + (f"-r{k}" if k else ""),
        type=1,
        image=case.image,
        prompt=SFT_TYPE1,
        response=type1_response(case.rationale, d, taxonomy, siblings=siblings),
        primary=d,
        differential=None,
        final=d,
        path=tuple(taxonomy.path(d)),
        malignancy=taxonomy.malignancy(d),
        rationale=_sentence(case.rationale),
        image_case=case.id,
        image_label=d,
        findings=findings,
        compact=compact_response(findings, d, taxonomy, book.rules),
    )


def _ddx_trajectory(
    t: int,
    primary: TextbookCase,
    differential: TextbookCase,
    source: str,
    comparator: Comparator,
    book: _Book,
    type3_image: str,
    siblings: bool,
) -> Trajectory:
    taxonomy = book.taxonomy
    d_p, d_d = primary.diagnosis, differential.diagnosis
    final = d_p if t == 2 else d_d
    r_p, r_d = book.rule_of(primary), book.rule_of(differential)
    rho = comparator(r_p, r_d, final, primary=d_p, differential=d_d)
    shown = differential if t == 3 and type3_image == "differential" else primary
    findings = split_rationale(shown.rationale)[0]
    thinking = ddx_thinking(r_p, d_p, r_d, d_d, rho, final, findings=findings)
    return Trajectory(
        id=f"t{t}-{primary.id}-vs-{differential.id}",
        type=t,
        image=shown.image,
        prompt=SFT_TYPE23,
        response=ddx_response(thinking, final, taxonomy, siblings=siblings),
        primary=d_p,
        differential=d_d,
        final=final,
        path=tuple(taxonomy.path(final)),
        malignancy=taxonomy.malignancy(final),
        rationale=thinking,
        image_case=shown.id,
        image_label=shown.diagnosis,
        differential_case=differential.id,
        ddx_source=source,
        label_mismatch=shown.diagnosis != final,
        findings=findings,
        compact=compact_response(
            findings, final, taxonomy, book.rules, primary=d_p, differential=d_d
        ),  # fmt: skip
    )


# --- export -----------------------------------------------------------------------------------
def to_sft_dataset(trajectories: Sequence[Trajectory]):
    """TRL's conversational prompt-completion format for vision, plus metadata columns.

    ``prompt`` is one user turn [{"type": "image"}, {"type": "text", ...}], ``completion`` one
    assistant turn, ``images`` a one-element list that SFTTrainer's vision collator fills into
    the image placeholder.
    """
    import datasets

    if not trajectories:
        raise ValueError("to_sft_dataset: no trajectories to convert")
    part = {"type": datasets.Value("string"), "text": datasets.Value("string")}
    turn = {"role": datasets.Value("string"), "content": datasets.List(part)}
    features = datasets.Features(
        {
            "prompt": datasets.List(turn),
            "completion": datasets.List(turn),
            "images": datasets.List(datasets.Image()),
            "id": datasets.Value("string"),
            "type": datasets.Value("int32"),
            "final": datasets.Value("string"),
            "primary": datasets.Value("string"),
            "differential": datasets.Value("string"),
            "compact": datasets.Value("string"),
        }
    )
    rows = [
        {
            "prompt": user_message(tr.prompt),
            "completion": [
                {"role": "assistant", "content": [{"type": "text", "text": tr.response}]}
            ],
            "images": [tr.image],
            "id": tr.id,
            "type": tr.type,
            "final": tr.final,
            "primary": tr.primary,
            "differential": tr.differential,
            "compact": tr.compact,
        }
        for tr in trajectories
    ]
    return datasets.Dataset.from_list(rows, features=features)


def save_skinrationale(
    trajectories: Sequence[Trajectory], out_dir: str | Path, report: dict | None = None
) -> dict[str, Path]:
    """Write ``dataset/`` (save_to_disk, image bytes embedded), ``trajectories.jsonl`` and,
    if given, ``report.json``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"dataset": out / "dataset", "jsonl": out / "trajectories.jsonl"}
    to_sft_dataset(trajectories).save_to_disk(str(paths["dataset"]))
    with open(paths["jsonl"], "w", encoding="utf-8") as fh:
        for tr in trajectories:
            fh.write(json.dumps(tr.to_dict(), ensure_ascii=False) + "\n")
    if report is not None:
        paths["report"] = out / "report.json"
        paths["report"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return paths


def synthesize_configured(P) -> tuple[list[Trajectory], dict]:
    """Stage 02 as params.yaml says: the textbook cases under ``data.textbook_root``, the
    configured comparator, types and counts; SkinRationale written to ``trajectories.out``."""
    from skinr1.datasets.textbook import load_cases
    from skinr1.ddx import load_ddx
    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy

    cfg = P.trajectories
    tax = load_taxonomy()
    ddx, rules = load_ddx(tax), load_rules(tax)
    cases = load_cases(Path(P.data.textbook_root), tax)
    comparator = (
        TemplateComparator(tax, ddx, rules)
        if cfg.comparator == "template"
        else OpenAIComparator(cfg.comparator_model, base_url=cfg.comparator_base_url)
    )
    trajectories, report = synthesize(
        cases, tax, ddx, rules, comparator, seed=P.seed, types=tuple(cfg.types),
        per_case={int(k): int(v) for k, v in cfg.per_case.items()}, type3_image=cfg.type3_image,
    )  # fmt: skip
    save_skinrationale(trajectories, cfg.out, report)
    return trajectories, report
