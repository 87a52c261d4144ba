"""The differential-diagnosis graph G_DDx and Algorithm 4 (ResolveDDXNeighbor).

Edges are data (``skinr1/knowledge/ddx.yaml``): undirected pairs of clinically confusable
taxonomy nodes, each with the one-line features that tell them apart. ``no_neighbour`` records
the few mapped diagnoses that have no look-alike in the tree, with the reason.

Structural checks (endpoints are nodes, no self-loops or duplicates, features present) always
run. ``strict`` mode (default for the packaged graph) adds the content policy: no edge joins a
node to its own ancestor (a refinement is not an alternative), and every node a dataset label
maps to has a neighbour or a documented reason.
"""

from __future__ import annotations

import random
import statistics as stats
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from skinr1.taxonomy import KNOWLEDGE_DIR, KnowledgeError, Taxonomy, _read_yaml


@dataclass
class DDxGraph:
    edges: dict[frozenset[str], str] = field(default_factory=dict)
    source: str = "ddx.yaml"
    no_neighbour: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._adj: dict[str, list[str]] = {}
        for pair in self.edges:
            a, b = sorted(pair)
            self._adj.setdefault(a, []).append(b)
            self._adj.setdefault(b, []).append(a)

    def __contains__(self, node: object) -> bool:
        return node in self._adj

    @property
    def nodes(self) -> list[str]:
        return list(self._adj)

    def neighbours(self, node: str) -> list[str]:
        """Adjacent diagnoses in file order (empty if the node is not in the graph)."""
        return list(self._adj.get(node, []))

    def discriminator(self, a: str, b: str) -> str:
        """The one-line discriminating features of edge (a, b)."""
        return self.edges[frozenset((a, b))]

    def degree(self, node: str) -> int:
        return len(self._adj.get(node, []))

    def to_networkx(self):
        import networkx as nx

        g = nx.Graph()
        for pair, text in self.edges.items():
            a, b = sorted(pair)
            g.add_edge(a, b, features=text)
        return g


def load_ddx(
    taxonomy: Taxonomy, path: Path | str | None = None, *, strict: bool | None = None
) -> DDxGraph:
    """Load the graph; every endpoint must be a taxonomy node and each edge needs its features."""
    if strict is None:
        strict = path is None
    path = Path(path or KNOWLEDGE_DIR / "ddx.yaml")
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("edges"), list):
        raise KnowledgeError(f"{path.name}: expected a top-level 'edges' list")
    unknown = set(raw) - {"edges", "no_neighbour"}
    if unknown:
        raise KnowledgeError(f"{path.name}: unknown top-level keys {sorted(unknown)}")
    edges: dict[frozenset[str], str] = {}
    for i, e in enumerate(raw["edges"]):
        where = f"{path.name}: edges[{i}]"
        if not isinstance(e, dict) or not {"a", "b", "features"} <= set(e):
            raise KnowledgeError(f"{where}: each edge needs 'a', 'b' and 'features'")
        where = f"{path.name}: edge {e['a']!r} - {e['b']!r}"
        for end in (e["a"], e["b"]):
            if end not in taxonomy or end == taxonomy.root:
                raise KnowledgeError(
                    f"{where}: {end!r} is not a node of {taxonomy.source} (orphan DDx node)"
                )
        if e["a"] == e["b"]:
            raise KnowledgeError(f"{where}: self-loop on {e['a']!r}")
        pair = frozenset((e["a"], e["b"]))
        if pair in edges:
            raise KnowledgeError(f"{where}: duplicate edge (edges are undirected)")
        if not str(e["features"] or "").strip():
            raise KnowledgeError(f"{where}: empty 'features'")
        if strict and (e["a"] in taxonomy.path(e["b"]) or e["b"] in taxonomy.path(e["a"])):
            raise KnowledgeError(
                f"{where}: one is an ancestor of the other in {taxonomy.source}; a subtype is a "
                f"refinement, not a differential"
            )
        edges[pair] = str(e["features"]).strip()
    no_neighbour = raw.get("no_neighbour") or {}
    if not isinstance(no_neighbour, dict):
        raise KnowledgeError(f"{path.name}: 'no_neighbour' must map node -> reason")
    graph = DDxGraph(
        edges, source=path.name, no_neighbour={str(k): v for k, v in no_neighbour.items()}
    )
    for node, reason in graph.no_neighbour.items():
        where = f"{path.name}: no_neighbour {node!r}"
        if node not in taxonomy:
            raise KnowledgeError(f"{where}: not a node of {taxonomy.source}")
        if not str(reason or "").strip():
            raise KnowledgeError(f"{where}: needs a reason")
        if node in graph:
            raise KnowledgeError(f"{where}: the node has edges, so it needs no exemption")
    if strict:
        for node in taxonomy.mapped_nodes():
            if node not in graph and node not in graph.no_neighbour:
                users = sorted(ds for ds, t in taxonomy.dataset_maps.items() if node in t.values())
                raise KnowledgeError(
                    f"{path.name}: node {node!r} (a label of {', '.join(users)}) has no DDx "
                    f"neighbour; add an edge or a 'no_neighbour' entry with the reason"
                )
    return graph


def resolve_ddx_neighbor(
    d: str,
    graph: DDxGraph,
    taxonomy: Taxonomy,
    case_diagnoses: Collection[str],
    rng: random.Random | None = None,
) -> str | None:
    """Algorithm 4: a DDx neighbour of ``d`` that has at least one textbook case, or None.

    Candidates are d's graph neighbours, else its taxonomy parent's. A candidate without cases
    is replaced by its nearest descendant that has one (the paper's "recursively examines the
    taxonomy children"; the printed line 20 would return any child, cases or not). Candidates
    are tried in file order, or shuffled by ``rng`` so that repeated calls vary.
    """
    have = set(case_diagnoses)
    if graph.neighbours(d):
        candidates = graph.neighbours(d)
    else:
        p = taxonomy.parent(d) if d in taxonomy else None
        if p is None or not graph.neighbours(p):
            return None
        candidates = graph.neighbours(p)
    candidates = [c for c in candidates if c != d]
    if rng is not None:
        rng.shuffle(candidates)
    for c in candidates:
        if c in have:
            return c
        for sub in taxonomy.descendants(c) if c in taxonomy else []:
            if sub in have and sub != d:
                return sub
    return None


def statistics(taxonomy: Taxonomy, graph: DDxGraph | None = None) -> dict:
    """Summary numbers of the knowledge base (notebook 01): tree shape, graph degree, datasets."""
    nodes = taxonomy.categories()
    depths = {n: taxonomy.depth(n) for n in nodes}
    leaves = taxonomy.leaves()
    out: dict = {
        "nodes": len(nodes),
        "leaves": len(leaves),
        "top_level": len(taxonomy.children(taxonomy.root)),
        "max_depth": max(depths.values(), default=0),
        "depth_histogram": dict(sorted(Counter(depths.values()).items())),
        "mean_leaf_depth": round(stats.fmean(depths[n] for n in leaves), 3) if leaves else 0.0,
        "malignancy": dict(sorted(Counter(taxonomy.malignancy(n) for n in nodes).items())),
        "synonyms": sum(len(taxonomy.synonyms(n)) for n in nodes),
        "datasets": {
            ds: {
                "labels": len(t),
                "nodes": len(set(t.values())),
                "out_of_scope": len(taxonomy.out_of_scope.get(ds, {})),
                "malignancy_only": len(taxonomy.malignancy_only.get(ds, {})),
            }
            for ds, t in taxonomy.dataset_maps.items()
        },
    }
    if graph is not None:
        degrees = [graph.degree(n) for n in graph.nodes]
        mapped = taxonomy.mapped_nodes()
        out["ddx"] = {
            "edges": len(graph.edges),
            "nodes": len(graph.nodes),
            "mean_degree": round(stats.fmean(degrees), 3) if degrees else 0.0,
            "max_degree": max(degrees, default=0),
            "degree_histogram": dict(sorted(Counter(degrees).items())),
            "mapped_without_neighbour": sorted(n for n in mapped if n not in graph),
            "tree_nodes_in_graph": len(set(graph.nodes) & set(nodes)),
        }
    return out
