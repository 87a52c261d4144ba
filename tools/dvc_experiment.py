"""A named ``dvc exp run --temp`` of HEAD and its evaluation answers, for the ablation tools.

The experiment runs in a copy of HEAD, so the workspace keeps its outputs; its answers are read
from the DVC cache through the experiment's dvc.lock.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RECORDS = "data/eval_records.jsonl"


# What an experiment is made from: a commit that changed one of these is other code or parameters.
PIPELINE_INPUTS = ("dvc.yaml", "params.yaml", "pyproject.toml", "skinr1/", "notebooks/",
                   "requirements/")  # fmt: skip


def git(*args: str, root: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def experiment_ref(name: str, rerun: str, root: Path = ROOT) -> tuple[str, str]:
    """The git ref DVC keeps experiment ``name`` under, and the commit it was run from: HEAD's,
    else that of HEAD's nearest ancestor with one, provided no commit since then changed a
    pipeline input (commits of documentation or tests keep it valid). ``rerun`` is the command
    an error tells the user to run."""
    refs = git("for-each-ref", "--format=%(refname)", f"refs/exps/*/*/{name}", root=root)
    by_commit = {r.split("/")[2] + r.split("/")[3]: r for r in refs.split()}
    for commit in git("rev-list", "HEAD", root=root).split():
        if commit not in by_commit:
            continue
        changed = git("diff", "--name-only", commit, "HEAD", root=root).split()
        inputs = [f for f in changed if f.startswith(PIPELINE_INPUTS)]
        if inputs:
            raise SystemExit(
                f"experiment {name} is of {commit[:7]}, and since then {', '.join(inputs)} "
                f"changed: rerun it with `{rerun}`"
            )
        return by_commit[commit], commit
    raise SystemExit(f"no experiment {name} of HEAD or its ancestors; run `{rerun}`")


def run_experiment(name: str, *overrides: str) -> None:
    """``dvc exp run --temp -S <override> ... -n <name>``; a failed stage stops with DVC's message."""
    sets = [a for o in overrides for a in ("-S", o)]
    subprocess.run(["dvc", "exp", "run", "--temp", *sets, "-n", name], cwd=ROOT,
                   check=True)  # fmt: skip


def experiment_records(name: str, rerun: str) -> list[dict]:
    """The evaluation answers of experiment ``name`` (see ``experiment_ref``)."""
    ref, _ = experiment_ref(name, rerun)
    lock = yaml.safe_load(git("show", f"{ref}:dvc.lock"))
    md5 = next(o["md5"] for o in lock["stages"]["evaluate"]["outs"] if o["path"] == RECORDS)
    path = ROOT / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    if not path.is_file():
        raise SystemExit(f"{path} (the experiment's {RECORDS}) is not in the DVC cache")
    return [json.loads(x) for x in path.read_text().splitlines()]


SLICES = {  # (set, answer depths) of the rows the ablation tools compare
    "disease": ("disease", (1, 2, 3)),
    "disease, depth 1": ("disease", (1,)),
    "disease, depths 2-3": ("disease", (2, 3)),
    "hierarchical": ("hierarchical", (1, 2, 3)),
}


def answers(records: list[dict], model: str, kind: str, depths: tuple[int, ...]) -> dict[str, dict]:
    """One model's answers to one set's questions at the given depths, by question id."""
    return {r["id"]: r for r in records
            if r["model"] == model and r["set"] == kind and r["depth"] in depths}  # fmt: skip


def workspace_records() -> list[dict]:
    return [json.loads(x) for x in (ROOT / RECORDS).read_text().splitlines()]


def ablation_args(doc: str, argv: list[str] | None):
    """An ablation tool's command line (``--collect``) and the workspace's params.yaml."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--collect", action="store_true", help="compare an experiment already run")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from skinr1.config import load_params

    return load_params(ROOT / "params.yaml"), args.collect
