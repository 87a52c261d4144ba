"""A named ``dvc exp run --temp`` of HEAD and its evaluation answers, for the ablation tools.

The experiment runs in a copy of HEAD, so the workspace keeps its outputs; its answers are read
from the DVC cache through the experiment's dvc.lock.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the tools read params.yaml with skinr1's loader
RECORDS = "data/eval_records.jsonl"


# What an experiment is made from: a commit that changed one of these is other code or parameters.
PIPELINE_INPUTS = ("dvc.yaml", "params.yaml", "pyproject.toml", "skinr1/", "notebooks/",
                   "requirements/")  # fmt: skip


def git(*args: str, root: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def with_overrides(params: dict, overrides: Sequence[str]) -> dict:
    """params.yaml's content with DVC's ``-S key.sub=value`` overrides applied (values as YAML)."""
    out = copy.deepcopy(params)
    for o in overrides:
        key, sep, value = o.partition("=")
        if not sep:
            raise ValueError(f"override {o!r}: expected key=value")
        *parents, leaf = key.split(".")
        node = out
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = yaml.safe_load(value)
    return out


def resolved(params: dict) -> dict:
    """params.yaml's values as the pipeline reads them (``skinr1.config.load_params``), so two
    files that spell a value differently compare equal (``dvc exp run -S`` rewrites the file:
    ``"no"`` loses its quotes and reads as false, which the loader maps back)."""
    from skinr1.config import SECTIONS, load_params

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        P = load_params(path)
    return {"seed": P.seed, "grpo_runs": P.grpo_runs, **{n: P[n] for n in SECTIONS}}


def experiment_ref(name: str, rerun: str, overrides: Sequence[str] = (),
                   root: Path = ROOT) -> tuple[str, str]:  # fmt: skip
    """The git ref of an experiment that ran HEAD's pipeline with ``overrides``, and the commit
    it was run from. An experiment counts when its own commit's pipeline inputs
    (``PIPELINE_INPUTS``) are HEAD's, params.yaml's content once the overrides are applied:
    then it ran what HEAD would run, whichever commit it started from and whatever its name (so
    commits of documentation or tests keep it, and a configuration tried as a variant counts
    once it becomes params.yaml's). The stages are deterministic, so any such experiment will
    do; the one named ``name`` is preferred, then the newest. ``rerun`` is the command an error
    tells the user to run."""
    from skinr1.config import ParamsError

    refs = git("for-each-ref", "--sort=-committerdate", "--format=%(refname)", "refs/exps/",
               root=root).split()  # fmt: skip
    refs = [r for r in refs if len(r.split("/")) == 5]  # refs/exps/ab/cdef.../<name>, not temp/
    refs.sort(key=lambda r: r.split("/")[4] != name)  # stable: newest first within each group
    want = resolved(with_overrides(yaml.safe_load(git("show", "HEAD:params.yaml", root=root)),
                                   overrides))  # fmt: skip
    mismatch = None
    for ref in refs:
        baseline = ref.split("/")[2] + ref.split("/")[3]
        differ = [f for f in git("diff", "--name-only", ref, "HEAD", "--", *PIPELINE_INPUTS,
                                 root=root).split() if f != "params.yaml"]  # fmt: skip
        try:
            theirs = resolved(yaml.safe_load(git("show", f"{ref}:params.yaml", root=root)))
        except ParamsError:  # the params of other code: a key HEAD has is missing, or new
            theirs = None
        if theirs != want:
            differ.append("params.yaml")
        if not differ:
            return ref, baseline
        if mismatch is None and ref.split("/")[4] == name:
            mismatch = (baseline, differ)
    if mismatch:
        commit, differ = mismatch
        raise SystemExit(
            f"experiment {name} is of {commit[:7]}, and its {', '.join(differ)} differ from "
            f"HEAD's: rerun it with `{rerun}`"
        )
    raise SystemExit(f"no experiment ran HEAD's pipeline as {name} would; run `{rerun}`")


def run_experiment(name: str, *overrides: str, force: bool = False) -> None:
    """``dvc exp run --temp -S <override> ... -n <name>`` (``-f``: replace an experiment of the
    same name and baseline); a failed stage stops with DVC's message."""
    sets = [a for o in overrides for a in ("-S", o)]
    cmd = ["dvc", "exp", "run", "--temp", *(["-f"] if force else []), *sets, "-n", name]
    subprocess.run(cmd, cwd=ROOT, check=True)


def experiment_records(name: str, rerun: str, overrides: Sequence[str] = ()) -> list[dict]:
    """The evaluation answers of experiment ``name`` (see ``experiment_ref``)."""
    ref, _ = experiment_ref(name, rerun, overrides)
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
    "out of distribution": ("ood", None),  # OmniMedVQA's answers have no taxonomy depth
}


def answers(records: list[dict], model: str, kind: str,
            depths: tuple[int, ...] | None) -> dict[str, dict]:  # fmt: skip
    """One model's answers to one set's questions at the given depths (None: all), by id."""
    return {r["id"]: r for r in records if r["model"] == model and r["set"] == kind
            and (depths is None or r["depth"] in depths)}  # fmt: skip


def workspace_records() -> list[dict]:
    return [json.loads(x) for x in (ROOT / RECORDS).read_text().splitlines()]


def ablation_args(doc: str, argv: list[str] | None):
    """An ablation tool's command line (``--collect``) and the workspace's params.yaml."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--collect", action="store_true", help="compare an experiment already run")
    args = ap.parse_args(argv)
    from skinr1.config import load_params

    return load_params(ROOT / "params.yaml"), args.collect
