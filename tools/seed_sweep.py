"""The whole pipeline again under other seeds, and the paper's orderings across all of them.

    python tools/seed_sweep.py 1 2 3           # one `dvc exp run --temp -S seed=N` each, then the table
    python tools/seed_sweep.py --collect 1 2 3  # the table from experiments already run
    python tools/seed_sweep.py --name deep4 --set grpo.deep_question_repeat=4 1234 1 2
                                                # another configuration under every seed named

Each seed is a full replicate: the seed drives the demo data, the splits, the options, the
trajectories and every training run, so the replicates differ in everything the seed decides
and nothing else. The runs are DVC experiments of the committed HEAD (named ``seed-N``, kept in
``dvc exp show``); the workspace is untouched. ``metrics/seeds.json`` gets every claim of every
seed (params.yaml's seed from the workspace's ``metrics/claims.json``), and the table printed is
the one the README shows: each claim's difference [95% interval] per seed, and in how many seeds
it holds. A claim that holds in some seeds only is not a result of the method on this proxy.
An experiment counts when what it ran is what HEAD would run under its seed: the same pipeline
inputs (``dvc_experiment.PIPELINE_INPUTS``), whatever commit it was run from (documentation or
tests committed between replicates keep it); each seed's commit is recorded.

With ``--set`` the replicates are of another configuration (params.yaml with the overrides),
named ``<name>-seed-N``, params.yaml's seed included; ``metrics/seeds_<name>.json`` gets their
claims and, per seed, each GRPO run's accuracy against the committed configuration's of the same
seed (the workspace, or the ``seed-N`` experiment), paired over the same questions. Once such a
configuration becomes params.yaml's, its replicates count as the ``seed-N`` ones.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import dvc_experiment
from dvc_experiment import SLICES, answers

ROOT = dvc_experiment.ROOT


def experiment_name(seed: int, variant: str | None = None) -> str:
    return f"{variant}-seed-{seed}" if variant else f"seed-{seed}"


def rerun_command(seed: int, variant: str | None = None, overrides: Sequence[str] = ()) -> str:
    """The command an error tells the user to run for this replicate."""
    named = f" --name {variant}" if variant else ""
    return f"python tools/seed_sweep.py{named}{''.join(f' --set {o}' for o in overrides)} {seed}"


def experiment_ref(seed: int, root: Path = ROOT, variant: str | None = None,
                   overrides: Sequence[str] = ()) -> tuple[str, str]:  # fmt: skip
    """The replicate's git ref and the commit it was run from."""
    return dvc_experiment.experiment_ref(
        experiment_name(seed, variant),
        rerun_command(seed, variant, overrides),
        [f"seed={seed}", *overrides],
        root=root,
    )


def run_experiment(seed: int, variant: str | None = None, overrides: Sequence[str] = ()) -> None:
    """``dvc exp run --temp -f``: a copy of HEAD in a temporary folder, so the workspace keeps its
    outputs, replacing a replicate of the same name and commit; a failed stage stops the sweep
    with DVC's own message."""
    dvc_experiment.run_experiment(
        experiment_name(seed, variant), f"seed={seed}", *overrides, force=True
    )


def experiment_claims(seed: int, variant: str | None = None,
                      overrides: Sequence[str] = ()) -> tuple[list[dict], str]:  # fmt: skip
    """The replicate's ``metrics/claims.json`` and the commit it was run from."""
    ref, commit = experiment_ref(seed, variant=variant, overrides=overrides)
    return json.loads(dvc_experiment.git("show", f"{ref}:metrics/claims.json")), commit


def experiment_records(seed: int, variant: str | None = None,
                       overrides: Sequence[str] = ()) -> list[dict]:  # fmt: skip
    """The replicate's evaluation answers (``data/eval_records.jsonl``, from the DVC cache)."""
    return dvc_experiment.experiment_records(
        experiment_name(seed, variant),
        rerun_command(seed, variant, overrides),
        [f"seed={seed}", *overrides],
    )


def against_committed(variant: list[dict], committed: list[dict], *, seed: int) -> dict:
    """Per model: whether it gave the same response to every question in both configurations (a
    model the overrides leave alone, e.g. SFT under a GRPO setting, should), and per slice
    (``dvc_experiment.SLICES``) the committed configuration's accuracy, the variant's, and
    variant - committed paired over the same questions [95% CI]."""
    from skinr1.evaluation import MODEL_LABELS
    from skinr1.intervals import accuracy_ci, paired_difference

    models = [m for m in MODEL_LABELS if any(r["model"] == m for r in variant)]
    out: dict[str, dict] = {}
    for model in models:
        mine = {(r["set"], r["id"]): r["response"] for r in variant if r["model"] == model}
        theirs = {(r["set"], r["id"]): r["response"] for r in committed if r["model"] == model}
        out[model] = {"identical": mine == theirs, "slices": {}}
        for label, (kind, depths) in SLICES.items():
            a = answers(variant, model, kind, depths)
            b = answers(committed, model, kind, depths)
            if sorted(a) != sorted(b):
                raise SystemExit(
                    f"{model}, {label}: the configurations answered different questions"
                )
            ids = sorted(a)
            if not ids:  # a set this run's evaluation leaves out
                continue
            ds = [a[i]["dataset"] for i in ids]
            va, vb = [a[i]["correct"] for i in ids], [b[i]["correct"] for i in ids]
            out[model]["slices"][label] = {
                "committed": accuracy_ci(vb, ds, seed=seed)["pooled"],
                "variant": accuracy_ci(va, ds, seed=seed)["pooled"],
                "variant - committed": paired_difference(va, vb, ds, seed=seed),
            }
    return out


def render_against(by_seed: dict[int, dict]) -> str:
    """Markdown: one row per model and slice, one column per seed; a model with the same
    responses under every seed gets one row saying so."""
    from skinr1.evaluation import MODEL_LABELS

    seeds = list(by_seed)
    lines = ["| model | questions | " + " | ".join(f"seed {s}: committed -> variant, difference"
                                                for s in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]  # fmt: skip
    first = by_seed[seeds[0]]
    for model, entry in first.items():
        rows = entry["slices"]
        cells = [[by_seed[s][model]["slices"][label] for s in seeds] for label in rows]
        if all(by_seed[s][model]["identical"] for s in seeds):
            lines.append(f"| {MODEL_LABELS[model]} | every question | "
                         + " | ".join("the same answers" for _ in seeds) + " |")  # fmt: skip
            continue
        for label, row in zip(rows, cells, strict=True):
            text = [f"{c['committed']['value']:.3f} -> {c['variant']['value']:.3f}, "
                    f"{c['variant - committed']['value']:+.3f} "
                    f"[{c['variant - committed']['ci_low']:+.3f}, "
                    f"{c['variant - committed']['ci_high']:+.3f}] (n = {c['variant']['n']})"
                    for c in row]  # fmt: skip
            lines.append(f"| {MODEL_LABELS[model]} | {label} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def summarise(claims_by_seed: dict[int, list[dict]]) -> list[dict]:
    """Per claim: each seed's difference, interval, n and verdict, and the seeds it holds in."""
    from skinr1.evaluation import verdict

    seeds = list(claims_by_seed)
    names = [c["claim"] for c in claims_by_seed[seeds[0]]]
    out = []
    for i, name in enumerate(names):
        per_seed = {}
        for s in seeds:
            c = claims_by_seed[s][i]
            if c["claim"] != name:
                raise ValueError(f"seed {s}: claim {i} is {c['claim']!r}, not {name!r}")
            per_seed[s] = {k: c[k] for k in ("diff", "ci_low", "ci_high", "n", "holds")}
            per_seed[s]["verdict"] = verdict(c) if c["diff"] is not None else "not evaluated"
        held = [s for s in seeds if per_seed[s]["holds"]]
        out.append({"claim": name, "set": claims_by_seed[seeds[0]][i]["set"],
                    "seeds": per_seed, "holds_in": held, "n_seeds": len(seeds)})  # fmt: skip
    return out


def render(summary: list[dict]) -> str:
    """Markdown: one row per claim, one column per seed (difference [95% CI], verdict)."""
    seeds = list(summary[0]["seeds"])
    lines = ["| claim (set) | " + " | ".join(f"seed {s}" for s in seeds) + " | holds in |",
             "|---|" + "---|" * (len(seeds) + 1)]  # fmt: skip
    short = {"holds": "holds", "no difference": "no difference", "opposite": "opposite",
             "not evaluated": "not evaluated"}  # fmt: skip
    for row in summary:
        cells = []
        for s in seeds:
            v = row["seeds"][s]
            if v["diff"] is None:
                cells.append("not evaluated")
                continue
            cells.append(f"{v['diff']:+.3f} [{v['ci_low']:+.2f}, {v['ci_high']:+.2f}] "
                         f"{short[v['verdict']]}")  # fmt: skip
        lines.append(f"| {row['claim']} ({row['set']}) | " + " | ".join(cells)
                     + f" | {len(row['holds_in'])} of {row['n_seeds']} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from skinr1.config import load_params  # dvc_experiment put the repository on sys.path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+", help="seeds other than params.yaml's")
    ap.add_argument("--collect", action="store_true", help="only gather experiments already run")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run another configuration: params.yaml with this override (repeatable)",
    )
    ap.add_argument("--name", help="the other configuration's name (with --set)")
    args = ap.parse_args(argv)
    if bool(args.overrides) != bool(args.name):
        ap.error("--set and --name go together: name the configuration the overrides make")
    P = load_params(ROOT / "params.yaml")
    variant = args.name
    if not variant and P.seed in args.seeds:
        raise SystemExit(f"seed {P.seed} is params.yaml's: the workspace's run is that replicate")
    if not args.collect:
        for seed in args.seeds:
            run_experiment(seed, variant, args.overrides)
    claims: dict[int, list[dict]] = {}
    commits: dict[int, str] = {}
    if not variant:
        claims[P.seed] = json.loads((ROOT / "metrics" / "claims.json").read_text())
        commits[P.seed] = dvc_experiment.git("rev-parse", "HEAD").strip()
    for s in args.seeds:
        claims[s], commits[s] = experiment_claims(s, variant, args.overrides)
    summary = summarise(claims)
    record = {"commit": dvc_experiment.git("rev-parse", "HEAD").strip(), "seeds": list(claims),
              "commits": commits, "claims": summary}  # fmt: skip
    out = ROOT / "metrics" / "seeds.json"
    if variant:
        by_seed = {}
        for s in args.seeds:
            mine = experiment_records(s, variant, args.overrides)
            committed = dvc_experiment.workspace_records() if s == P.seed else experiment_records(s)
            by_seed[s] = against_committed(mine, committed, seed=P.seed)
        record |= {"name": variant, "overrides": args.overrides, "against_committed": by_seed}
        out = ROOT / "metrics" / f"seeds_{variant}.json"
    out.write_text(json.dumps(record, indent=1))
    print(render(summary))
    if variant:
        print()
        print(render_against(by_seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
