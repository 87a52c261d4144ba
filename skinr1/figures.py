"""Figures of the notebooks: the taxonomy tree, the DDx graph, training curves, result bars."""

from __future__ import annotations

import math

MALIGNANCY_COLOURS = {
    "benign": "#4C9F70",
    "malignant": "#C8553D",
    "precancerous in situ": "#E8A33D",
}


def _radial_positions(tax, max_depth: int) -> dict[str, tuple[float, float]]:
    """Radial tree layout: leaves (of the tree cut at max_depth) evenly spaced on their ring,
    each inner node at the angular mean of its children."""
    leaves: list[str] = []

    def collect(n: str, d: int) -> None:
        kids = tax.children(n) if d < max_depth else []
        if not kids:
            leaves.append(n)
        for k in kids:
            collect(k, d + 1)

    for top in tax.children(tax.root):
        collect(top, 1)
    angle = {n: 2 * math.pi * i / max(len(leaves), 1) for i, n in enumerate(leaves)}

    def place(n: str, d: int) -> float:
        kids = tax.children(n) if d < max_depth else []
        if kids:
            angle[n] = sum(place(k, d + 1) for k in kids) / len(kids)
        return angle[n]

    for top in tax.children(tax.root):
        place(top, 1)
    pos = {tax.root: (0.0, 0.0)}
    for n, a in angle.items():
        r = tax.depth(n)
        pos[n] = (r * math.cos(a), r * math.sin(a))
    return pos


def draw_taxonomy(tax, *, max_depth: int = 3, ax=None, label_depth: int = 2):
    """The tree as a radial layout cut at ``max_depth`` (deeper levels are counted, not drawn),
    nodes coloured by malignancy; labels on the first ``label_depth`` levels."""
    import matplotlib.pyplot as plt

    pos = _radial_positions(tax, max_depth)
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 13))
    for n, (x, y) in pos.items():
        if n == tax.root:
            continue
        p = tax.parent(n) or tax.root
        px, py = pos[p]
        ax.plot([px, x], [py, y], color="#bbbbbb", lw=0.8, zorder=1)
    for n, (x, y) in pos.items():
        if n == tax.root:
            ax.scatter([x], [y], s=120, color="black", zorder=3)
            continue
        hidden = len(tax.descendants(n)) if tax.depth(n) == max_depth else 0
        ax.scatter([x], [y], s=40 + 6 * hidden, color=MALIGNANCY_COLOURS[tax.malignancy(n)],
                   zorder=2, edgecolor="white", lw=0.5)  # fmt: skip
        if tax.depth(n) <= label_depth:
            label = n + (f" (+{hidden})" if hidden else "")
            ang = math.degrees(math.atan2(y, x))
            flip = 90 < ang % 360 < 270
            ax.text(x * 1.04, y * 1.04, label, fontsize=7, rotation=ang + (180 if flip else 0),
                    ha="right" if flip else "left", va="center", rotation_mode="anchor")  # fmt: skip
    for m, c in MALIGNANCY_COLOURS.items():
        ax.scatter([], [], color=c, label=m)
    ax.legend(loc="lower left", frameon=False)
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_title(f"Diagnosis tree (depth <= {max_depth}; marker size = hidden descendants)")
    return ax


def draw_ddx(graph, tax, *, ax=None, seed: int = 0):
    """The DDx graph, nodes coloured by malignancy, sized by degree."""
    import matplotlib.pyplot as plt
    import networkx as nx

    g = graph.to_networkx()
    if ax is None:
        _, ax = plt.subplots(figsize=(14, 11))
    pos = nx.spring_layout(g, seed=seed, k=1.6 / math.sqrt(max(len(g), 1)))
    colours = [MALIGNANCY_COLOURS[tax.malignancy(n)] for n in g.nodes]
    sizes = [60 + 40 * g.degree(n) for n in g.nodes]
    nx.draw_networkx_edges(g, pos, ax=ax, edge_color="#aaaaaa", width=0.8)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, node_size=sizes)
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=6)
    for m, c in MALIGNANCY_COLOURS.items():
        ax.scatter([], [], color=c, label=m)
    ax.legend(loc="lower left", frameon=False)
    ax.set_axis_off()
    ax.set_title("Differential-diagnosis graph (colour = malignancy, size = degree)")
    return ax


def draw_curves(df, *, x: str, ys: list[str], by: str | None = None, ax=None, title: str = "",
                smooth: int = 1, ylabel: str | None = None):  # fmt: skip
    """Line plot of training logs (optionally one line per ``by`` group, rolling mean); the
    y axis is labelled with the quantity (or ``ylabel``), the x axis with ``x``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    groups = df.groupby(by) if by else [("", df)]
    for name, part in groups:
        for y in ys:
            series = part[y].astype(float).rolling(smooth, min_periods=1).mean()
            ax.plot(part[x], series, label=f"{name} {y}".strip())
    ax.set_xlabel("optimiser step" if x == "step" else x)
    ax.set_ylabel(ylabel or (ys[0] if len(ys) == 1 else "value"))
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def draw_bars(frame, *, ax=None, title: str = "", ylabel: str = "accuracy",
              xlabel: str = "dataset"):  # fmt: skip
    """Grouped bars: one group per column (dataset), one bar per row (model)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4))
    frame.T.plot.bar(ax=ax, width=0.8)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


def draw_reliability(bins_by_model: dict[str, list[dict]], *, ax=None, title: str = ""):
    """Reliability diagram: accuracy against mean confidence per bin, the marker's area the bin's
    count; the diagonal is perfect calibration."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    for model, bins in bins_by_model.items():
        if bins:
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                    label=model)  # fmt: skip
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence in the answer", ylabel="accuracy",
           title=title)  # fmt: skip
    ax.legend(fontsize=8)
    return ax


def draw_risk_coverage(curves: dict[str, list[dict]], *, ax=None, title: str = "",
                       target: float | None = None):  # fmt: skip
    """Risk (error rate of the answered questions) against coverage, answering the most
    confident first; the dotted line is the target risk. A point's risk holds up to its
    coverage (a step drawn "pre"), since the questions of one threshold are answered together."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    for model, points in curves.items():
        if points:
            ax.step([0] + [p["coverage"] for p in points], [points[0]["risk"]]
                    + [p["risk"] for p in points], where="pre", label=model)  # fmt: skip
    if target is not None:
        ax.axhline(1 - target, color="grey", lw=1, ls=":")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="coverage (share answered)", ylabel="risk",
           title=title)  # fmt: skip
    ax.legend(fontsize=8)
    return ax
