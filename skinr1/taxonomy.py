"""The hierarchical diagnosis tree T_tax, with malignancy per node and per-dataset label maps.

The tree and the maps are data (``skinr1/knowledge/taxonomy.yaml`` and ``datasets.yaml``); this
module only loads, validates and queries them. Paths exclude the root, so depth 1 is the
coarsest category a question may offer and ``path(x)[-1] == x``.

Validation has two tiers. Structural invariants (one root, no cycles, known parents, unique
names and synonyms, valid malignancy values, every label mapped to a real node) always hold.
Content policy (a child's malignancy agrees with its parent's unless the child's ``note``
explains the exception; every out-of-scope label gives a reason) is checked in ``strict`` mode,
which is the default for the packaged files; hand-made test taxonomies may opt in.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge"
MALIGNANCY = ("benign", "malignant", "precancerous in situ")
NODE_KEYS = {"name", "parent", "malignancy", "synonyms", "note"}
DATASET_KEYS = {"labels", "out_of_scope", "malignancy_only", "hierarchy", "note"}


class KnowledgeError(ValueError):
    """A knowledge-base file breaks an invariant; the message names the file and the entry."""


def normalise(text: str) -> str:
    """Lower-case, unify apostrophes/underscores/hyphens and collapse spaces, for name matching."""
    text = text.lower().replace("’", "'").replace("_", " ").replace("-", " ")
    text = re.sub(r"[^\w' /()]+", " ", text)
    return re.sub(r"\s+", " ", text).strip().rstrip(".")


@dataclass
class Node:
    name: str
    parent: str | None
    malignancy: str
    synonyms: tuple[str, ...] = ()
    note: str = ""
    children: list[str] = field(default_factory=list)


@dataclass
class Taxonomy:
    root: str
    nodes: dict[str, Node]
    dataset_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    out_of_scope: dict[str, dict[str, str]] = field(default_factory=dict)
    source: str = "taxonomy.yaml"
    # Answers that name only a malignancy ("Benign image."), per dataset: raw label -> value.
    malignancy_only: dict[str, dict[str, str]] = field(default_factory=dict)
    # A dataset's own coarser label levels (DERM12345's super and main classes), as loaded.
    hierarchy: dict[str, dict] = field(default_factory=dict)
    datasets_source: str = "datasets.yaml"

    def __post_init__(self) -> None:
        self._lookup: dict[str, str] = {}
        for node in self.nodes.values():
            for alias in (node.name, *node.synonyms):
                self._lookup.setdefault(normalise(alias), node.name)
        # Normalised views of the label tables, built once: DermNet alone has ~20k files.
        self._norm_maps = {
            ds: {normalise(k): v for k, v in table.items()}
            for ds, table in self.dataset_maps.items()
        }
        self._norm_oos = {
            ds: {normalise(k): v for k, v in t.items()} for ds, t in self.out_of_scope.items()
        }
        self._norm_malig = {
            ds: {normalise(k): v for k, v in t.items()} for ds, t in self.malignancy_only.items()
        }

    # --- structure -------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def _node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a node of {self.source}") from None

    def parent(self, name: str) -> str | None:
        """Parent node, or None for a top-level category (the root is never returned)."""
        p = self._node(name).parent
        return None if p == self.root else p

    def children(self, name: str) -> list[str]:
        return list(self._node(name).children)

    def path(self, name: str) -> list[str]:
        """Ancestors from the coarsest category down to ``name`` itself (root excluded)."""
        out = [name]
        while (p := self.parent(out[-1])) is not None:
            out.append(p)
        return out[::-1]

    def depth(self, name: str) -> int:
        return len(self.path(name))

    def ancestors(self, name: str) -> list[str]:
        return self.path(name)[:-1]

    def descendants(self, name: str) -> list[str]:
        out, stack = [], list(self.children(name))
        while stack:
            n = stack.pop(0)
            out.append(n)
            stack.extend(self.children(n))
        return out

    def siblings(self, name: str) -> list[str]:
        p = self._node(name).parent
        return [c for c in self._node(p).children if c != name] if p in self.nodes else []

    def leaves(self) -> list[str]:
        return [n for n, node in self.nodes.items() if not node.children and n != self.root]

    def categories(self) -> list[str]:
        """Every node except the root, in file order."""
        return [n for n in self.nodes if n != self.root]

    def malignancy(self, name: str) -> str:
        return self._node(name).malignancy

    def synonyms(self, name: str) -> tuple[str, ...]:
        return self._node(name).synonyms

    def note(self, name: str) -> str:
        return self._node(name).note

    # --- names and dataset labels ----------------------------------------------------------
    def resolve(self, text: str) -> str | None:
        """Node for a name or synonym, in any case/spelling variant; None if unknown."""
        return self._lookup.get(normalise(text))

    def _table(self, dataset: str) -> dict[str, str]:
        table = self.dataset_maps.get(dataset)
        if table is None:
            raise KeyError(f"no label map for dataset {dataset!r} in {self.datasets_source}")
        return table

    def map_label(self, dataset: str, raw_label: str) -> str | None:
        """Node of a dataset's raw label, or None if unmapped (unknown or out of scope)."""
        table = self._table(dataset)
        key = str(raw_label).strip()
        if key in table:
            return table[key]
        return self._norm_maps[dataset].get(normalise(key))

    def out_of_scope_reason(self, dataset: str, raw_label: str) -> str | None:
        """Why a raw label is deliberately left out, or None if it is not declared out of scope."""
        self._table(dataset)
        return self._norm_oos.get(dataset, {}).get(normalise(str(raw_label)))

    def map_malignancy(self, dataset: str, raw_label: str) -> str | None:
        """Malignancy of a raw label: its node's, or the value of a malignancy-only answer."""
        node = self.map_label(dataset, raw_label)
        if node is not None:
            return self.malignancy(node)
        return self._norm_malig.get(dataset, {}).get(normalise(str(raw_label)))

    def label_status(self, dataset: str, raw_label: str) -> str:
        """'mapped', 'malignancy_only', 'out_of_scope' or 'unknown' (a coverage gap)."""
        if self.map_label(dataset, raw_label) is not None:
            return "mapped"
        key = normalise(str(raw_label))
        if key in self._norm_malig.get(dataset, {}):
            return "malignancy_only"
        if key in self._norm_oos.get(dataset, {}):
            return "out_of_scope"
        return "unknown"

    def dataset_nodes(self, dataset: str) -> list[str]:
        """The dataset's own label tree: its mapped nodes and all their ancestors."""
        seen: dict[str, None] = {}
        for node in self.dataset_maps.get(dataset, {}).values():
            for n in self.path(node):
                seen[n] = None
        return list(seen)

    def mapped_nodes(self) -> list[str]:
        """Every node some dataset label maps to, in first-seen order."""
        return list(dict.fromkeys(n for t in self.dataset_maps.values() for n in t.values()))

    def to_networkx(self):
        import networkx as nx

        g = nx.DiGraph()
        for n, node in self.nodes.items():
            g.add_node(n, malignancy=node.malignancy)
            if node.parent is not None:
                g.add_edge(node.parent, n)
        return g


# Parsed packaged files, keyed by path and (mtime, size): every pipeline stage and many tests
# load the knowledge base, and parsing is most of the cost. Callers get a private deep copy.
_YAML_CACHE: dict[Path, tuple[tuple[int, int], object]] = {}


def _read_yaml(path: Path) -> object:
    path = Path(path)
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        cacheable = path.resolve().parent == KNOWLEDGE_DIR.resolve()
        if cacheable and path in _YAML_CACHE and _YAML_CACHE[path][0] == stamp:
            return copy.deepcopy(_YAML_CACHE[path][1])
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise KnowledgeError(f"{path}: knowledge file not found") from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: not valid YAML: {exc}") from None
    if cacheable:
        _YAML_CACHE[path] = (stamp, copy.deepcopy(data))
    return data


def load_taxonomy(
    taxonomy_file: Path | str | None = None,
    datasets_file: Path | str | None = None,
    *,
    strict: bool | None = None,
) -> Taxonomy:
    """Load and validate the tree and the dataset maps; raise KnowledgeError on any violation.

    ``strict`` (default: on for the packaged taxonomy file) adds the content-policy checks.
    """
    tpath = Path(taxonomy_file or KNOWLEDGE_DIR / "taxonomy.yaml")
    dpath = Path(datasets_file or KNOWLEDGE_DIR / "datasets.yaml")
    raw = _read_yaml(tpath)
    if not isinstance(raw, dict) or "root" not in raw or "nodes" not in raw:
        raise KnowledgeError(f"{tpath.name}: expected top-level keys 'root' and 'nodes'")
    root = raw["root"]
    if not isinstance(root, str) or not root.strip():
        raise KnowledgeError(f"{tpath.name}: 'root' must be a non-empty name")
    nodes: dict[str, Node] = {root: Node(root, None, "benign")}
    for i, entry in enumerate(raw["nodes"] or []):
        where = f"{tpath.name}: nodes[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KnowledgeError(f"{where}: each node needs a 'name' string")
        name = entry["name"]
        where = f"{tpath.name}: node {name!r}"
        unknown = set(entry) - NODE_KEYS
        if unknown:
            raise KnowledgeError(f"{where}: unknown keys {sorted(unknown)}; allowed {NODE_KEYS}")
        if name in nodes:
            what = "is the root" if name == root else "is a duplicate node name"
            raise KnowledgeError(f"{where}: {what}; node names must be unique")
        if name != " ".join(name.lower().split()):
            raise KnowledgeError(f"{where}: names are lower case with single spaces")
        if entry.get("malignancy") not in MALIGNANCY:
            raise KnowledgeError(
                f"{where}: malignancy must be one of {MALIGNANCY}, got {entry.get('malignancy')!r}"
            )
        if "parent" in entry and entry["parent"] is None:
            raise KnowledgeError(
                f"{where}: 'parent: null' would make a second root; omit 'parent' to hang the "
                f"node under the root {root!r}"
            )
        synonyms = entry.get("synonyms") or ()
        if isinstance(synonyms, str) or not all(isinstance(s, str) for s in synonyms):
            raise KnowledgeError(f"{where}: 'synonyms' must be a list of strings")
        nodes[name] = Node(
            name=name,
            parent=entry.get("parent", root),
            malignancy=entry["malignancy"],
            synonyms=tuple(synonyms),
            note=str(entry.get("note") or "").strip(),
        )
    maps, oos, malig, hier = _load_dataset_maps(dpath)
    tax = Taxonomy(root, nodes, maps, oos, tpath.name, malig, hier, dpath.name)
    if strict is None:
        strict = taxonomy_file is None
    validate_taxonomy(tax, strict=strict)
    return tax


def _load_dataset_maps(path: Path) -> tuple[dict, dict, dict, dict]:
    raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{path.name}: expected a mapping of dataset name -> label map")
    maps, oos, malig, hier = {}, {}, {}, {}
    for ds, body in raw.items():
        where = f"{path.name}: dataset {ds!r}"
        if not isinstance(body, dict) or not isinstance(body.get("labels"), (dict, type(None))):
            raise KnowledgeError(f"{where}: needs a 'labels' mapping raw label -> node")
        if "labels" not in body:
            raise KnowledgeError(f"{where}: needs a 'labels' mapping raw label -> node")
        unknown = set(body) - DATASET_KEYS
        if unknown:
            raise KnowledgeError(f"{where}: unknown keys {sorted(unknown)}; allowed {DATASET_KEYS}")
        for key in ("out_of_scope", "malignancy_only", "hierarchy"):
            if not isinstance(body.get(key) or {}, dict):
                raise KnowledgeError(f"{where}: '{key}' must be a mapping")
        maps[ds] = {str(k): v for k, v in (body["labels"] or {}).items()}
        oos[ds] = {str(k): v for k, v in (body.get("out_of_scope") or {}).items()}
        malig[ds] = {str(k): v for k, v in (body.get("malignancy_only") or {}).items()}
        hier[ds] = body.get("hierarchy") or {}
    return maps, oos, malig, hier


def _link_children(tax: Taxonomy) -> None:
    for node in tax.nodes.values():
        node.children = []
    for name, node in tax.nodes.items():
        if name == tax.root:
            continue
        if node.parent not in tax.nodes:
            raise KnowledgeError(
                f"{tax.source}: node {name!r} has unknown parent {node.parent!r}; declare the "
                f"parent as a node or fix the spelling"
            )
        tax.nodes[node.parent].children.append(name)


def validate_taxonomy(tax: Taxonomy, *, strict: bool = False) -> None:
    """One root, no cycles, parents exist, synonyms unique, maps valid; policy when ``strict``."""
    src = tax.source
    _link_children(tax)
    for name in tax.nodes:
        seen, cur = set(), name
        while cur is not None:
            if cur in seen:
                raise KnowledgeError(
                    f"{src}: cycle through node {name!r} (parent chain revisits {cur!r})"
                )
            seen.add(cur)
            cur = tax.nodes[cur].parent
    owner: dict[str, str] = {}
    for name, node in tax.nodes.items():
        for alias in (name, *node.synonyms):
            key = normalise(alias)
            if key in owner and owner[key] != name:
                raise KnowledgeError(
                    f"{src}: name/synonym {alias!r} of node {name!r} already names {owner[key]!r}"
                )
            if strict and key in owner and alias != name:
                raise KnowledgeError(
                    f"{src}: synonym {alias!r} of node {name!r} repeats a name it already has "
                    f"(matching ignores case, hyphens and punctuation); drop it"
                )
            owner[key] = name
    for ds, table in tax.dataset_maps.items():
        _validate_dataset(tax, ds, table, strict)
    if strict:
        for name, node in tax.nodes.items():
            p = node.parent
            if name == tax.root or p == tax.root or node.malignancy == tax.nodes[p].malignancy:
                continue
            if "malignancy" not in node.note.lower():
                raise KnowledgeError(
                    f"{src}: node {name!r} is {node.malignancy!r} but its parent {p!r} is "
                    f"{tax.nodes[p].malignancy!r}; make them agree or explain the exception in "
                    f"the node's 'note' (mentioning its malignancy)"
                )
    tax.__post_init__()


def _validate_dataset(tax: Taxonomy, ds: str, table: dict[str, str], strict: bool) -> None:
    dsrc = tax.datasets_source
    for raw, node in table.items():
        if node not in tax.nodes or node == tax.root:
            raise KnowledgeError(
                f"{dsrc}: {ds} label {raw!r} maps to {node!r}, which is not a node of {tax.source}"
            )
    oos = tax.out_of_scope.get(ds, {})
    malig = tax.malignancy_only.get(ds, {})
    for raw, value in malig.items():
        if value not in MALIGNANCY:
            raise KnowledgeError(
                f"{dsrc}: {ds} malignancy_only label {raw!r} has {value!r}; use one of {MALIGNANCY}"
            )
    seen: dict[str, str] = {}
    for section, labels in (("labels", table), ("out_of_scope", oos), ("malignancy_only", malig)):
        for raw in labels:
            key = normalise(raw)
            if key in seen:
                raise KnowledgeError(
                    f"{dsrc}: {ds} label {raw!r} in '{section}' collides with {seen[key]} "
                    f"(labels match case- and punctuation-insensitively)"
                )
            seen[key] = f"{raw!r} in '{section}'"
    for raw, reason in oos.items():
        if strict and not (isinstance(reason, str) and reason.strip()):
            raise KnowledgeError(f"{dsrc}: {ds} out_of_scope label {raw!r} needs a reason")
    _validate_hierarchy(tax, ds, table)


def _validate_hierarchy(tax: Taxonomy, ds: str, table: dict[str, str]) -> None:
    """A dataset's own levels: each level partitions the mapped codes; malignancy agrees."""
    dsrc = tax.datasets_source
    hier = tax.hierarchy.get(ds) or {}
    levels = hier.get("levels") or {}
    exceptions = hier.get("malignancy_exceptions") or {}
    for level, groups in levels.items():
        where = f"{dsrc}: {ds} hierarchy level {level!r}"
        if not isinstance(groups, dict):
            raise KnowledgeError(f"{where}: expected group name -> {{codes, malignancy}}")
        counted: dict[str, str] = {}
        for group, body in groups.items():
            if not isinstance(body, dict) or not isinstance(body.get("codes"), list):
                raise KnowledgeError(f"{where}: group {group!r} needs a 'codes' list")
            value = body.get("malignancy")
            if value is not None and value not in MALIGNANCY:
                raise KnowledgeError(
                    f"{where}: group {group!r} malignancy {value!r} not in {MALIGNANCY}"
                )
            for code in body["codes"]:
                code = str(code)
                if code not in table:
                    raise KnowledgeError(f"{where}: group {group!r} lists {code!r}, not a label")
                if code in counted:
                    raise KnowledgeError(
                        f"{where}: {code!r} is in both {counted[code]!r} and {group!r}"
                    )
                counted[code] = group
                node = table[code]
                if value and tax.nodes[node].malignancy != value and code not in exceptions:
                    raise KnowledgeError(
                        f"{where}: {code!r} -> {node!r} is {tax.nodes[node].malignancy!r} but "
                        f"group {group!r} is {value!r}; fix one or list {code!r} under "
                        f"malignancy_exceptions with the reason"
                    )
        missing = sorted(set(table) - set(counted))
        if missing:
            raise KnowledgeError(f"{where}: labels {missing} belong to no group")
    for code, reason in exceptions.items():
        if str(code) not in table or not str(reason or "").strip():
            raise KnowledgeError(
                f"{dsrc}: {ds} malignancy_exceptions entry {code!r} needs a known label and a reason"
            )


def unmapped_labels(tax: Taxonomy, dataset: str, raw_labels: Iterable[str]) -> list[str]:
    """Raw labels that are neither mapped, malignancy-only nor declared out of scope (a gap)."""
    return [r for r in raw_labels if tax.label_status(dataset, r) == "unknown"]
