"""``make supplement``: the executed notebooks in ``reports/`` as HTML, with an index page that
links them in order, for readers without Jupyter. Run: python tools/supplement.py [OUT]"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def title(notebook: Path) -> str:
    """The notebook's first Markdown heading, with the GRPO run it executed (notebook 04 runs
    once per run, with the papermill parameter ``run``)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    run = nb.get("metadata", {}).get("papermill", {}).get("parameters", {}).get("run")
    suffix = f" (run {run})" if run else ""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip() + suffix
    return notebook.stem + suffix


def render(reports: Path, out: Path) -> list[Path]:
    """Write ``out/<name>.html`` for each ``reports/0*.ipynb`` and ``out/index.html``."""
    import nbformat
    from nbconvert import HTMLExporter

    # In pipeline order; notebook 04's Skin-R1 run before its ablation.
    notebooks = sorted(reports.glob("0*.ipynb"), key=lambda p: (p.stem[:2], "without" in p.stem))
    if not notebooks:
        raise FileNotFoundError(f"no executed notebooks in {reports}; run `dvc repro` first")
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    items = []
    for nb in notebooks:
        body, _ = exporter.from_notebook_node(nbformat.read(nb, as_version=4))
        (out / f"{nb.stem}.html").write_text(body, encoding="utf-8")
        items.append(f'<li><a href="{nb.stem}.html">{html.escape(title(nb))}</a></li>')
    index = ("<!doctype html><html><head><meta charset='utf-8'><title>Skin-R1 supplement</title>"
             "</head><body><h1>Skin-R1 reimplementation: supplement</h1><p>The executed "
             "notebooks of the pipeline, in order (from <code>reports/</code>).</p><ol>"
             + "".join(items) + "</ol></body></html>\n")  # fmt: skip
    (out / "index.html").write_text(index, encoding="utf-8")
    return [out / "index.html", *(out / f"{nb.stem}.html" for nb in notebooks)]


if __name__ == "__main__":
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "supplement"
    paths = render(ROOT / "reports", dest)
    print(f"{len(paths) - 1} notebooks rendered; open {paths[0]}")
