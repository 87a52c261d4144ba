"""A named ``dvc exp run --temp`` of HEAD and its evaluation answers, for the ablation tools.

The experiment runs in a copy of HEAD, so the workspace keeps its outputs; its answers are read
from the DVC cache through the experiment's dvc.lock.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RECORDS = "data/eval_records.jsonl"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def experiment_ref(name: str) -> str:
    head = git("rev-parse", "HEAD").strip()
    return f"refs/exps/{head[:2]}/{head[2:]}/{name}"


def run_experiment(name: str, *overrides: str) -> None:
    """``dvc exp run --temp -S <override> ... -n <name>``; a failed stage stops with DVC's message."""
    sets = [a for o in overrides for a in ("-S", o)]
    subprocess.run(["dvc", "exp", "run", "--temp", *sets, "-n", name], cwd=ROOT,
                   check=True)  # fmt: skip


def experiment_records(name: str) -> list[dict]:
    """The evaluation answers of experiment ``name`` of HEAD."""
    ref = experiment_ref(name)
    try:
        lock = yaml.safe_load(git("show", f"{ref}:dvc.lock"))
    except subprocess.CalledProcessError:
        raise SystemExit(
            f"no experiment {name} of HEAD ({ref}); run the tool without --collect"
        ) from None
    md5 = next(o["md5"] for o in lock["stages"]["evaluate"]["outs"] if o["path"] == RECORDS)
    path = ROOT / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    if not path.is_file():
        raise SystemExit(f"{path} (the experiment's {RECORDS}) is not in the DVC cache")
    return [json.loads(x) for x in path.read_text().splitlines()]


def workspace_records() -> list[dict]:
    return [json.loads(x) for x in (ROOT / RECORDS).read_text().splitlines()]
