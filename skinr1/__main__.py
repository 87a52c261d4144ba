"""Command line: ``python -m skinr1 <command> ...``; each command lives with the code it runs."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "datasets": ("skinr1.datasets.report", "report what the loaders find under a data root"),
    "demo-data": (
        "skinr1.embedded.demo_data",
        "generate the embedded demo data in the real layouts",
    ),
    "base-model": (
        "skinr1.embedded.tiny_model",
        "build the tiny offline Qwen2.5-VL and warm it up",
    ),
    "sft": ("skinr1.sft", "stage 03: SFT on SkinRationale (one process or under accelerate)"),
    "grpo": ("skinr1.grpo", "stage 04: GRPO, --run sft_rl or rl_without_sft"),
    "evaluate": ("skinr1.evaluation", "stage 05: answer the question sets, write the metrics"),
    "paper-params": ("skinr1.paper_params", "rewrite params.yaml with every paper: value"),
    "gpu-check": ("skinr1.gpu_check", "SFT, GRPO (trl, unsloth) and evaluation on a CUDA GPU"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        print("usage: python -m skinr1 <command> [options]\n\ncommands:")
        for name, (_, help_) in COMMANDS.items():
            print(f"  {name:<12} {help_}")
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
