"""How long GRPO's sampling of one step's completions takes, with and without the merged LoRA.

    python tools/bench_sampling.py [--adapter models/sft] [--repeats 5]

Samples ``grpo.prompts_per_step`` questions x ``grpo.num_generations`` completions of exactly
``grpo.max_completion_length`` tokens (EOS suppressed, so every setting decodes the same number of
tokens) from the built base model with the SFT adapter, as TRL's generation does: in training mode
(LoRA dropout on), in eval mode, and merged (``skinr1.grpo.merged_for_sampling``), at 1 and at all
threads. Prints the median time of each; run it after `dvc repro sft`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import torch
    from peft import PeftModel
    from PIL import Image

    from skinr1.config import load_params
    from skinr1.grpo import merged_for_sampling
    from skinr1.model import load_model, load_processor
    from skinr1.prompts import format_question, template, user_message

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--adapter", default=None, help="default: sft.out")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    P = load_params(args.params)
    adapter = args.adapter or P.sft.out
    if not (Path(adapter) / "adapter_config.json").exists():
        raise SystemExit(f"no adapter at {adapter}: run `dvc repro sft` first")
    G, M = P.grpo, P.model
    proc = load_processor(M.base, max_pixels=M.max_pixels, min_pixels=M.min_pixels,
                          trust_remote_code=M.trust_remote_code)  # fmt: skip
    model = PeftModel.from_pretrained(load_model(M.base, dtype=M.dtype), adapter, is_trainable=True)
    images = sorted(Path(P.data.textbook_root, "textbook", "images").glob("*.png"))
    options = {"A": "melanoma", "B": "melanocytic nevus", "C": "basal cell carcinoma",
               "D": "dermatofibroma"}  # fmt: skip
    text = template("rl", M.prompt_style).format(question=format_question(options))
    chat = proc.apply_chat_template(user_message(text, M.prompt_style), add_generation_prompt=True,
                                    tokenize=False)  # fmt: skip
    k, n = G.num_generations, G.prompts_per_step
    batch = proc(text=[chat] * (n * k), images=[Image.open(images[i // k]) for i in range(n * k)],
                 return_tensors="pt", padding=True)  # fmt: skip
    length = G.max_completion_length

    def timed(label: str) -> None:
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            with torch.no_grad():
                model.generate(**batch, do_sample=True, temperature=G.temperature,
                               max_new_tokens=length, min_new_tokens=length)  # fmt: skip
            runs.append(time.perf_counter() - t0)
        print(f"{label:<34}{statistics.median(runs):7.3f} s  ({n} x {k} completions, {length} "
              f"tokens, {torch.get_num_threads()} threads)")  # fmt: skip

    torch.manual_seed(P.seed)
    model.train()
    timed("LoRA, training mode (TRL's default)")
    model.eval()
    timed("LoRA, eval mode")
    threads = torch.get_num_threads()
    for t in sorted({1, threads}):
        torch.set_num_threads(t)
        model.train()
        with merged_for_sampling(model):
            timed(f"merged, eval mode, {t} thread(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
