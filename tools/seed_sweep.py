"""The whole pipeline again under other seeds, and the paper's orderings across all of them.

    python tools/seed_sweep.py 1 2 3           # one `dvc exp run --temp -S seed=N` each, then the table
    python tools/seed_sweep.py --collect 1 2 3  # the table from experiments already run

Each seed is a full replicate: the seed drives the demo data, the splits, the options, the
trajectories and every training run, so the replicates differ in everything the seed decides
and nothing else. The runs are DVC experiments of the committed HEAD (named ``seed-N``, kept in
``dvc exp show``); the workspace is untouched. ``metrics/seeds.json`` gets every claim of every
seed (params.yaml's seed from the workspace's ``metrics/claims.json``), and the table printed is
the one the README shows: each claim's difference [95% interval] per seed, and in how many seeds
it holds. A claim that holds in some seeds only is not a result of the method on this proxy.
An experiment of an earlier commit still counts when no commit since then changed a pipeline
input (``dvc_experiment.PIPELINE_INPUTS``: documentation or tests committed between
replicates); each seed's commit is recorded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import dvc_experiment

ROOT = dvc_experiment.ROOT


def experiment_ref(seed: int, root: Path = ROOT) -> tuple[str, str]:
    """The ``seed-N`` experiment's git ref and the commit it was run from."""
    return dvc_experiment.experiment_ref(
        f"seed-{seed}", f"python tools/seed_sweep.py {seed}", root=root
    )


def run_experiment(seed: int) -> None:
    """``dvc exp run --temp``: a copy of HEAD in a temporary folder, so the workspace keeps its
    outputs; a failed stage stops the sweep with DVC's own message."""
    subprocess.run(["dvc", "exp", "run", "--temp", "-f", "-S", f"seed={seed}", "-n",
                    f"seed-{seed}"], cwd=ROOT, check=True)  # fmt: skip


def experiment_claims(seed: int) -> tuple[list[dict], str]:
    """The ``seed-N`` experiment's ``metrics/claims.json`` and the commit it was run from."""
    ref, commit = experiment_ref(seed)
    return json.loads(dvc_experiment.git("show", f"{ref}:metrics/claims.json")), commit


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
    sys.path.insert(0, str(ROOT))
    from skinr1.config import load_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+", help="seeds other than params.yaml's")
    ap.add_argument("--collect", action="store_true", help="only gather experiments already run")
    args = ap.parse_args(argv)
    base_seed = load_params(ROOT / "params.yaml").seed
    if base_seed in args.seeds:
        raise SystemExit(
            f"seed {base_seed} is params.yaml's: the workspace's run is that replicate"
        )
    if not args.collect:
        for seed in args.seeds:
            run_experiment(seed)
    claims = {base_seed: json.loads((ROOT / "metrics" / "claims.json").read_text())}
    commits = {base_seed: dvc_experiment.git("rev-parse", "HEAD").strip()}
    for s in args.seeds:
        claims[s], commits[s] = experiment_claims(s)
    summary = summarise(claims)
    record = {"commit": commits[base_seed], "seeds": list(claims), "commits": commits,
              "claims": summary}  # fmt: skip
    (ROOT / "metrics" / "seeds.json").write_text(json.dumps(record, indent=1))
    print(render(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
