"""Real optimiser steps of every training stage on the micro tiny model."""

import json
import os
from pathlib import Path

import pytest

from skinr1.config import load_params

pytestmark = pytest.mark.slow


@pytest.fixture()
def stage(project_copy):
    cwd = os.getcwd()
    os.chdir(project_copy)
    yield load_params("params.yaml")
    os.chdir(cwd)


def _sft_dataset(P):
    from skinr1.datasets.textbook import load_cases
    from skinr1.ddx import load_ddx
    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy
    from skinr1.trajectories import TemplateComparator, synthesize, to_sft_dataset

    tax = load_taxonomy()
    ddx, rules = load_ddx(tax), load_rules(tax)
    cases = load_cases(Path(P.data.textbook_root), tax)[:12]
    trajs, _ = synthesize(cases, tax, ddx, rules, TemplateComparator(tax, ddx, rules), seed=P.seed)
    return to_sft_dataset(trajs), rules


def _sft_then_questions(P, *, n: int, seed: int):
    """Train the SFT adapter, then the RL dataset of the first ``n`` training samples."""
    from skinr1.datasets.selection import load_configured, split_samples
    from skinr1.ddx import load_ddx
    from skinr1.grpo import rl_dataset
    from skinr1.mcq import build_question_set
    from skinr1.sft import train_sft
    from skinr1.taxonomy import load_taxonomy

    ds, _ = _sft_dataset(P)
    train_sft(P.model, P.sft, P.lora, ds, compute=P.compute, seed=P.seed, mcq_trees=P.data.rl_datasets, run_dir=Path("ck/sft"),
              out_dir=Path(P.sft.out))  # fmt: skip
    tax = load_taxonomy()
    res = load_configured(P.data.root, P.data.rl_datasets, tax, seed=P.seed)
    qs, _ = build_question_set(split_samples(res, "train")[:n], "disease", tax, load_ddx(tax), seed)
    return rl_dataset([q.to_row() for q in qs], P.model.prompt_style)


def test_sft_trains_saves_an_adapter_and_resumes(stage):
    from skinr1.curves import read_curves
    from skinr1.sft import train_sft

    P = stage
    ds, rules = _sft_dataset(P)
    hist = train_sft(P.model, P.sft, P.lora, ds, compute=P.compute, seed=P.seed, mcq_trees=P.data.rl_datasets,
                     run_dir=Path("ck/sft"), out_dir=Path(P.sft.out), curves_dir=Path("live"))  # fmt: skip
    assert [h["step"] for h in hist] == [1, 2] and all(h["loss"] > 0 for h in hist)
    out = Path(P.sft.out)
    assert (out / "adapter_config.json").exists() and (out / "adapter_model.safetensors").exists()
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == P.lora.r and cfg["lora_alpha"] == P.lora.alpha
    assert set(cfg["modules_to_save"]) == {"embed_tokens", "lm_head"}
    assert not Path(str(out) + ".partial").exists()
    # A longer run with the same checkpoints resumes at step 2 instead of starting over.
    P.sft.max_steps = 3
    first = read_curves("live")
    (Path("live") / "plots/metrics/loss.tsv").open("a").write("9\t1.0\n")  # logged after the
    # last checkpoint by an interrupted run: the resumed run's curve must not keep it
    hist = train_sft(P.model, P.sft, P.lora, ds, compute=P.compute, seed=P.seed, mcq_trees=P.data.rl_datasets,
                     run_dir=Path("ck/sft"), out_dir=out, curves_dir=Path("live"))  # fmt: skip
    assert [h["step"] for h in hist] == [1, 2, 3]
    log = json.loads((out / "log_history.json").read_text())
    assert log[-1]["step"] == 3
    # DVCLive's curve: one row per logged step, the resumed run's too, the first two unchanged
    curve = read_curves("live")
    assert curve.step.tolist() == [1, 2, 3]
    assert curve.loss.tolist() == [h["loss"] for h in hist]
    assert curve.loss.tolist()[:2] == first.loss.tolist()


def test_replay_mixes_the_requested_share_without_diagnosis_names(stage):
    from skinr1.sft import with_replay

    P = stage
    ds, rules = _sft_dataset(P)
    mixed = with_replay(ds, P.model.base, fraction=0.25, seed=1)
    replay = [r for r in mixed if r["type"] == 0]
    assert len(replay) == round(len(ds) * 0.25 / 0.75) == 12
    assert len(mixed) == len(ds) + 12
    # the warm-up names top-level categories (its stand-in for pretraining), never a diagnosis
    from skinr1.taxonomy import load_taxonomy

    tax = load_taxonomy()
    names = {n for n in rules.rules if len(tax.path(n)) > 1}
    for r in replay:
        text = r["completion"][0]["content"][0]["text"]
        assert not any(f" {n}." in text or f">{n}<" in text for n in names)
    with pytest.raises(ValueError, match="needs 324 replay rows.*raise base_model.warmup_examples"):
        with_replay(ds, P.model.base, fraction=0.9, seed=1)  # the micro pool holds 240
    with pytest.raises(FileNotFoundError, match="has no warmup_data/.*set sft.replay_fraction: 0"):
        with_replay(ds, "elsewhere", fraction=0.25, seed=1)


def test_grpo_trains_from_the_sft_adapter_and_without_sft(stage):
    from skinr1.curves import curve_values
    from skinr1.grpo import train_grpo

    P = stage
    rl = _sft_then_questions(P, n=8, seed=P.seed)
    for adapter, run in ((P.sft.out, "sft_rl"), (None, "rl_without_sft")):
        out = P.grpo_adapter(run)
        hist = train_grpo(P.model, P.grpo, P.lora, rl, compute=P.compute, adapter=adapter,
                          seed=P.seed, run_dir=Path("ck") / run, out_dir=out)  # fmt: skip
        assert [h["step"] for h in hist] == [1, 2]
        for h in hist:  # Eq. 5: the total is the sum of the three terms, each within its range
            r = curve_values(h)
            assert {"reward", "kl", "completion_length"} <= set(r)
            terms = r["reward_format"], r["reward_granularity"], r["reward_malignancy"]
            assert r["reward"] == pytest.approx(sum(terms), abs=1e-6)
            assert 0 <= terms[0] <= 1 and 0 <= terms[1] <= 0.75 and 0 <= terms[2] <= 0.25
        assert (Path(out) / "adapter_model.safetensors").exists()
    # KL to the SFT policy needs beta > 0: the paper's setting is enforced.
    P.grpo.beta = 0.0
    with pytest.raises(ValueError, match="grpo.beta must be > 0"):
        train_grpo(P.model, P.grpo, P.lora, rl, compute=P.compute, adapter=None, seed=P.seed,
                   run_dir=Path("ck/x"), out_dir=Path("x"))  # fmt: skip


def test_unsloth_engine_without_a_gpu_says_what_to_do(stage):
    import torch

    from skinr1.launch import LaunchError, preflight

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    stage.grpo.engine = "unsloth"
    with pytest.raises(LaunchError, match="needs a CUDA GPU.*set grpo.engine: trl"):
        preflight(stage, "grpo")


def test_kl_reference_is_the_sft_policy_when_continuing_and_when_merging(stage):
    """Eq. 4's reference is the SFT policy in both initialisations, before and after training:
    a frozen copy of the SFT adapter (continue), or the merged SFT model under the new adapter
    (merge, the set-up Unsloth's trainer needs)."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    from skinr1.evaluation import load_eval_model
    from skinr1.grpo import build_trainer, reference_of

    P = stage
    rl = _sft_then_questions(P, n=4, seed=1)
    P.grpo.max_steps = 1
    sft_file = load_file(str(Path(P.sft.out) / "adapter_model.safetensors"))

    trainer = build_trainer(P.model, P.grpo, P.lora, P.compute, rl, adapter=P.sft.out, seed=P.seed,
                            run_dir=Path("ck/cont"))  # fmt: skip
    assert reference_of(trainer) == "frozen copy of the starting adapter ('ref')"
    trainer.train()
    ref = get_peft_model_state_dict(trainer.model, adapter_name="ref")
    assert set(ref) == set(sft_file)
    assert all(torch.equal(ref[k], sft_file[k]) for k in sft_file)
    moved = get_peft_model_state_dict(trainer.model, adapter_name="default")
    assert any(not torch.equal(moved[k], sft_file[k]) for k in sft_file)

    P.grpo.sft_init = "merge"
    trainer = build_trainer(P.model, P.grpo, P.lora, P.compute, rl, adapter=P.sft.out, seed=P.seed,
                            run_dir=Path("ck/merge"), merged_dir=Path("ck/merged"))  # fmt: skip
    assert reference_of(trainer).endswith("ck/merged")
    trainer.train()
    sft_policy = load_eval_model(P.model, P.sft.out)
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad(), trainer.model.disable_adapter():
        ref_logits = trainer.model(input_ids=ids).logits
    with torch.no_grad():
        assert torch.allclose(ref_logits, sft_policy(input_ids=ids).logits, atol=1e-5)


def test_merged_sampling_samples_the_same_policy_and_restores_the_weights_exactly(stage):
    import torch
    from peft import LoraConfig, get_peft_model

    from skinr1.grpo import merged_for_sampling, merges_for_sampling
    from skinr1.model import load_model

    P = stage
    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.5, target_modules=["q_proj", "v_proj"],
                     init_lora_weights=False)  # non-zero B, so merging changes the weights  # fmt: skip
    model = get_peft_model(load_model(P.model.base), cfg)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        model.eval()
        unmerged = model(input_ids=ids).logits
        model.train()
        with merged_for_sampling(model) as m:
            assert not m.training  # dropout off while sampling
            merged = m(input_ids=ids).logits
    assert model.training
    assert torch.allclose(merged, unmerged, atol=1e-5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bit for bit
    assert merges_for_sampling(P.grpo, P.compute)
    assert not merges_for_sampling(P.grpo.model_copy(update={"use_vllm": True}), P.compute)
    assert not merges_for_sampling(P.grpo.model_copy(update={"merged_sampling": False}), P.compute)


def test_sampling_benchmark_runs_every_setting(stage, capsys):
    import importlib.util

    from skinr1.sft import train_sft

    P = stage
    ds, _ = _sft_dataset(P)
    train_sft(P.model, P.sft, P.lora, ds, compute=P.compute, seed=P.seed, mcq_trees=P.data.rl_datasets, run_dir=Path("ck/sft"),
              out_dir=Path(P.sft.out))  # fmt: skip
    path = Path(__file__).resolve().parent.parent / "tools" / "bench_sampling.py"
    spec = importlib.util.spec_from_file_location("bench_sampling", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--params", "params.yaml", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "training mode" in out and "eval mode" in out and "merged, eval mode, 1 thread" in out
    assert f"{P.grpo.prompts_per_step} x {P.grpo.num_generations} completions" in out


def test_grpo_trial_can_freeze_the_saved_modules_and_train_the_lora_alone(stage):
    """tools/grpo_trial.py --freeze-saved-modules: one real GRPO step from the SFT adapter moves
    LoRA matrices and leaves the LM head and embeddings at SFT's weights; the patch is undone."""
    import importlib.util
    import sys

    import torch

    import skinr1.grpo as grpo

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "tools"))
    spec = importlib.util.spec_from_file_location("grpo_trial", root / "tools" / "grpo_trial.py")
    trial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trial)

    P = stage
    rl = _sft_then_questions(P, n=4, seed=1)
    P.grpo.max_steps = 1
    build = grpo.build_trainer
    with trial.saved_modules_frozen(True):
        trainer = grpo.build_trainer(P.model, P.grpo, P.lora, P.compute, rl, adapter=P.sft.out,
                                     seed=P.seed, run_dir=Path("ck/frozen"))  # fmt: skip
    assert grpo.build_trainer is build
    params = dict(trainer.model.named_parameters())
    saved = {n: p.detach().clone() for n, p in params.items() if "modules_to_save.default" in n}
    lora = {n: p.detach().clone() for n, p in params.items() if "lora_B.default" in n}
    assert {n.split(".modules_to_save")[0].rsplit(".", 1)[-1] for n in saved} == {
        "embed_tokens", "lm_head"
    }  # fmt: skip
    assert not any(params[n].requires_grad for n in saved)
    trainer.train()
    assert all(torch.equal(params[n], w) for n, w in saved.items())
    assert any(not torch.equal(params[n], w) for n, w in lora.items())
