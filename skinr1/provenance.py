"""Which project code a stage runs: the ``skinr1`` modules a notebook or module reaches through
its imports (module-level and inside functions), for DVC's dependency lists (a test keeps
``dvc.yaml`` complete) and for checkpoint keys (changed code never resumes a stale run)."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent


def _source(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return path.read_text(encoding="utf-8")


def module_file(name: str) -> Path | None:
    """The file of a ``skinr1`` module or package, or None for a name that is no module."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(_source(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "skinr1"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "skinr1":
                out.add(node.module)
                # `from skinr1 import figures` names a module, not an attribute
                out |= {f"{node.module}.{a.name}" for a in node.names
                        if module_file(f"{node.module}.{a.name}")}  # fmt: skip
    return out


def closure(*sources: str | Path) -> list[Path]:
    """Every ``skinr1`` source file that the given files (modules, notebooks) reach, sorted,
    with the packages on each module's path (their ``__init__`` runs on import)."""
    todo = [Path(s) for s in sources]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        for name in _imported(path):
            parts = name.split(".")
            for i in range(2, len(parts) + 1):
                f = module_file(".".join(parts[:i]))
                if f is not None and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return sorted(seen)


def code_fingerprint(*modules: str) -> str:
    """A hash of the source of ``modules`` and everything they reach."""
    h = hashlib.sha256()
    files = {module_file(m) for m in modules} | set(
        closure(*filter(None, map(module_file, modules)))
    )
    for f in sorted(x for x in files if x is not None):
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]
