"""Resolving a free-text diagnosis name (a DermNet file-name stem) to a taxonomy node.

DermNet's file names name a disease in its own words: ``nevi-blue``, ``keratoses-seborrheic``,
``basal-cell-carcinoma-nose-3``. An exact list in ``knowledge/datasets.yaml`` covers some; the
rest would be dropped although the taxonomy knows the disease. The order tried:

1. ``explicit``: the dataset's label map (``taxonomy.map_label``), exactly as the loader always did.
2. ``synonym``: the taxonomy's node names and synonyms (and the label map's own keys), compared
   as multisets of normalised words, so word order, case, hyphens, apostrophes and plurals do
   not matter; the words in ``QUALIFIERS`` (body sites, "lesion", view words, anything with a
   digit) may be left over. The match that leaves fewest words over wins; two different nodes
   at that level are ambiguous and resolve to nothing (reported as such).

A name the knowledge base declares out of scope is never resolved by step 2: leaving those out
is a decision, not a gap.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

# Words that say where or how a lesion was photographed, not what it is. A closed list, so a
# reviewer can see every word the resolver is allowed to ignore (docs/deviations.md). "nail" is
# not here: a nail melanoma is a subungual melanoma, a different node.
SITES = frozenset(
    "face facial nose nasal ear lip scalp hand arm leg foot finger toe trunk back chest neck "
    "eye eyelid lid cheek forehead chin shoulder abdomen thigh buttock groin axilla palm sole "
    "genital vulva penis scrotum".split()
)
VIEWS = frozenset("lesion photo picture image closeup dermoscopy".split())
QUALIFIERS = SITES | VIEWS
# Function words dropped from both sides ("erythroplasia of queyrat" = "erythroplasia queyrat").
STOPWORDS = frozenset("of the and with on".split())
IRREGULAR = {
    "nevi": "nevus",
    "naevi": "naevus",
    "fungi": "fungus",
    "feet": "foot",
    "milia": "milium",
    "lentigines": "lentigo",
    "comedones": "comedo",
}
MAX_QUALIFIERS = 8  # a name with more qualifier words than this is matched only as a whole


def singular(word: str) -> str:
    """A canonical singular, applied to both sides of a comparison (so it needs only to be
    consistent, not correct English): keratoses -> keratosis, nevi -> nevus, tags -> tag."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if word.endswith("oses") and len(word) > 5:
        return word[:-2] + "is"
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Normalised words of a name: lower case, apostrophes dropped, split on anything else."""
    text = str(text).lower().replace("'", "").replace("\u2019", "")
    return [singular(w) for w in re.findall(r"[a-z0-9]+", text) if w not in STOPWORDS]


def is_qualifier(word: str) -> bool:
    return word in QUALIFIERS or any(c.isdigit() for c in word)


def _key(ws) -> tuple[str, ...]:
    return tuple(sorted(ws))


@dataclass(frozen=True)
class Resolution:
    node: str | None
    method: str | None  # "explicit", "synonym" or "folder"; None when unresolved
    candidates: tuple[str, ...] = ()  # the nodes an ambiguous name matches equally well


class NameResolver:
    """``resolver(raw)`` -> Resolution, for one dataset's raw labels against one taxonomy."""

    def __init__(self, taxonomy, dataset: str) -> None:
        self.taxonomy, self.dataset = taxonomy, dataset
        self._index: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for name, node in taxonomy.nodes.items():
            if name == taxonomy.root:
                continue
            for alias in (name, *node.synonyms):
                self._add(alias, name)
        for raw, node in taxonomy.dataset_maps.get(dataset, {}).items():
            self._add(raw, node)
        self._out_of_scope = {
            _key(words(raw))
            for table in (taxonomy.out_of_scope, taxonomy.malignancy_only)
            for raw in table.get(dataset, {})
        }

    def _add(self, alias: str, node: str) -> None:
        key = _key(words(alias))
        if key:
            self._index[key].add(node)

    def explicit(self, raw: str) -> str | None:
        try:
            return self.taxonomy.map_label(self.dataset, raw)
        except KeyError:  # the knowledge base has no map for this dataset
            return None

    def __call__(self, raw: str) -> Resolution:
        node = self.explicit(raw)
        if node is not None:
            return Resolution(node, "explicit")
        ws = words(raw)
        if self._declared_unmapped(raw, ws):
            return Resolution(None, None)
        quals = [i for i, w in enumerate(ws) if is_qualifier(w)]
        if len(quals) > MAX_QUALIFIERS:
            quals = []
        # Fewest words left over first: "basal cell carcinoma nodular" is the nodular subtype,
        # not basal cell carcinoma with a word to spare.
        for n_drop in range(len(quals) + 1):
            found: set[str] = set()
            for drop in combinations(quals, n_drop):
                key = _key(w for i, w in enumerate(ws) if i not in drop)
                if key:
                    found |= self._index.get(key, set())
            if len(found) == 1:
                return Resolution(found.pop(), "synonym")
            if found:
                return Resolution(None, None, tuple(sorted(found)))
        return Resolution(None, None)

    def _declared_unmapped(self, raw: str, ws: list[str]) -> bool:
        tax = self.taxonomy
        try:
            if tax.out_of_scope_reason(self.dataset, raw) is not None:
                return True
            if tax.map_malignancy(self.dataset, raw) is not None:
                return True
        except KeyError:
            return False
        return _key(ws) in self._out_of_scope
