"""Textbook-style diagnostic rules and the structured visual-feature vocabulary.

Every diagnosis node has a rule ("Presence of ... indicates <diagnosis>.") and the same
features in a closed vocabulary (``skinr1/knowledge/features.yaml``). The vocabulary is what
the demo image generator draws, so a rule, its picture and the rationale text never disagree.

Structural checks (known nodes, vocabulary values, value types) always run. ``strict`` mode
(default for the packaged rule book) adds the content policy: every taxonomy node has its own
rule, written "Presence of ... indicates <node>.", and no two DDx neighbours have identical
features (the demo images of look-alikes must still differ).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from skinr1.taxonomy import KNOWLEDGE_DIR, KnowledgeError, Taxonomy, _read_yaml

# Attributes that hold one value; every other vocabulary key holds a list.
SINGLE_VALUED = ("symmetry", "border", "elevation", "size")
RULE_PREFIX = "Presence of "


@dataclass(frozen=True)
class Features:
    symmetry: str = "symmetric"
    border: str = "regular"
    elevation: str = "flat"
    size: str = "medium"
    colours: tuple[str, ...] = ()
    structures: tuple[str, ...] = ()
    surface: tuple[str, ...] = ()

    def describe(self) -> str:
        """Plain-English description in a fixed order (used for captions and rationales)."""
        parts = [f"{self.symmetry} {self.elevation} lesion with {self.border} border"]
        if self.colours:
            parts.append("colours " + ", ".join(self.colours))
        if self.structures:
            parts.append(", ".join(self.structures))
        if self.surface:
            parts.append(", ".join(self.surface) + " surface")
        return "; ".join(parts)


@dataclass(frozen=True)
class Rule:
    diagnosis: str
    text: str
    features: Features


@dataclass
class RuleBook:
    rules: dict[str, Rule]
    vocabulary: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __contains__(self, node: object) -> bool:
        return node in self.rules

    def rule_for(self, node: str, taxonomy: Taxonomy | None = None) -> Rule:
        """The node's rule, else (with a taxonomy) its nearest ancestor's."""
        if node in self.rules:
            return self.rules[node]
        if taxonomy is not None:
            for anc in reversed(taxonomy.ancestors(node)):
                if anc in self.rules:
                    return self.rules[anc]
        raise KeyError(f"no diagnostic rule for {node!r} (rules.yaml)")


def load_vocabulary(path: Path | str | None = None) -> dict[str, tuple[str, ...]]:
    path = Path(path or KNOWLEDGE_DIR / "features.yaml")
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{path}: expected a mapping attribute -> allowed values")
    known = {f.name for f in fields(Features)}
    vocab: dict[str, tuple[str, ...]] = {}
    for attr, values in raw.items():
        where = f"{path.name}: {attr!r}"
        if attr not in known:
            raise KnowledgeError(f"{where}: not a Features attribute {sorted(known)}")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise KnowledgeError(f"{where}: expected a list of strings")
        dup = sorted({v for v in values if values.count(v) > 1})
        if dup:
            raise KnowledgeError(f"{where}: duplicate values {dup}")
        vocab[attr] = tuple(values)
    return vocab


def load_rules(
    taxonomy: Taxonomy,
    path: Path | str | None = None,
    vocabulary_path: Path | str | None = None,
    *,
    strict: bool | None = None,
) -> RuleBook:
    """Load rules, checking every node exists and every feature value is in the vocabulary."""
    if strict is None:
        strict = path is None
    path = Path(path or KNOWLEDGE_DIR / "rules.yaml")
    vocab = load_vocabulary(vocabulary_path)
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{path}: expected a mapping diagnosis -> rule")
    rules: dict[str, Rule] = {}
    for node, body in raw.items():
        where = f"{path.name}: rule {node!r}"
        if node not in taxonomy or node == taxonomy.root:
            raise KnowledgeError(f"{where}: not a node of {taxonomy.source}")
        if not isinstance(body, dict) or not str(body.get("rule", "")).strip():
            raise KnowledgeError(f"{where}: needs a non-empty 'rule' text")
        text = " ".join(str(body["rule"]).split())
        if strict:
            ending = f"indicates {node}."
            if not text.startswith(RULE_PREFIX) or not text.lower().endswith(ending):
                raise KnowledgeError(
                    f"{where}: write it as '{RULE_PREFIX}... {ending}' (the textbook style the "
                    f"trajectories quote)"
                )
        feats = body.get("features") or {}
        if not isinstance(feats, dict):
            raise KnowledgeError(f"{where}: 'features' must be a mapping attribute -> value(s)")
        kwargs: dict[str, object] = {}
        for attr, value in feats.items():
            if attr not in vocab:
                raise KnowledgeError(f"{where}: unknown feature attribute {attr!r}")
            if attr in SINGLE_VALUED:
                if not isinstance(value, str):
                    raise KnowledgeError(f"{where}: {attr} takes one value, got {value!r}")
                values = [value]
            else:
                if isinstance(value, str) or not isinstance(value, list):
                    raise KnowledgeError(f"{where}: {attr} takes a list, got {value!r}")
                values = list(value)
                if len(set(values)) != len(values):
                    raise KnowledgeError(f"{where}: {attr} repeats a value: {values}")
            bad = [v for v in values if v not in vocab[attr]]
            if bad:
                raise KnowledgeError(f"{where}: {attr} values {bad} not in features.yaml")
            kwargs[attr] = value if attr in SINGLE_VALUED else tuple(value)
        rules[node] = Rule(node, text, Features(**kwargs))
    book = RuleBook(rules, vocab)
    if strict:
        missing = [n for n in taxonomy.categories() if n not in rules]
        if missing:
            raise KnowledgeError(
                f"{path.name}: no rule for {len(missing)} node(s) of {taxonomy.source}, e.g. "
                f"{missing[:5]}; every node can be offered as a diagnosis, so each needs a rule"
            )
        if path.parent == KNOWLEDGE_DIR:
            from skinr1.ddx import load_ddx

            check_ddx_features(book, load_ddx(taxonomy), path.name)
    return book


def check_ddx_features(book: RuleBook, graph, source: str = "rules.yaml") -> None:
    """Every DDx edge joins two diagnoses whose features differ, so their pictures differ too."""
    for pair in graph.edges:
        a, b = sorted(pair)
        if a in book.rules and b in book.rules and book.rules[a].features == book.rules[b].features:
            raise KnowledgeError(
                f"{source}: rules {a!r} and {b!r} are DDx neighbours ({graph.source}) with "
                f"identical features; give each at least one distinguishing value"
            )
