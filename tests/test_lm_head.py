"""TRL's fused LM head on the CPU scores the labelled positions only, with the same numbers."""

import pytest
import torch


def _patched_model(seed: int = 0):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)  # fmt: skip
    model = Qwen2ForCausalLM(cfg)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    return model


def _run(model, ids, labels):
    model.zero_grad()
    out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


def test_labelled_only_scoring_keeps_loss_log_probs_and_gradients(monkeypatch):
    import trl.trainer.utils as trl_utils
    from trl.kernels.chunked_logprob import _use_triton

    from skinr1.training import score_labelled_tokens_only

    # TRL's own predicate, whatever an earlier test patched; restored afterwards
    monkeypatch.setattr(trl_utils, "_use_triton", _use_triton)
    model = _patched_model()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 97, (3, 20), generator=g)
    labels = ids.clone()
    labels[:, :12] = -100  # a prompt of 12 tokens, then the completion
    labels[2, 17:] = -100  # one shorter completion

    rows = []
    original_apply = trl_utils._ChunkedLogProbFunction.apply

    def spy(hidden, *args):
        rows.append(hidden.shape[0])
        return original_apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", spy)
    before, grads_before = _run(model, ids, labels)
    score_labelled_tokens_only()
    score_labelled_tokens_only()  # idempotent: one wrapper, not two
    after, grads_after = _run(model, ids, labels)

    # every shifted position (3 x 19) before; the labelled ones alone (8 + 8 + 5) after
    labelled = int((labels[:, 1:] != -100).sum())
    assert rows == [57, labelled] and labelled == 21
    torch.testing.assert_close(after.loss, before.loss, rtol=0, atol=1e-6)
    torch.testing.assert_close(after.log_probs, before.log_probs, rtol=0, atol=1e-5)
    torch.testing.assert_close(after.entropy, before.entropy, rtol=0, atol=1e-5)
    assert torch.equal(after.is_top1, before.is_top1)
    assert grads_after.keys() == grads_before.keys() and len(grads_after) > 5
    for name, grad in grads_after.items():
        torch.testing.assert_close(grad, grads_before[name], rtol=1e-4, atol=1e-6, msg=name)
    assert trl_utils._use_triton(torch.device("cpu")) is True


@pytest.mark.parametrize("kind", ["cuda", "meta"])
def test_other_devices_keep_trls_choice(monkeypatch, kind):
    import trl.trainer.utils as trl_utils

    from skinr1.training import score_labelled_tokens_only

    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: device.type == "cuda")
    score_labelled_tokens_only()
    assert trl_utils._use_triton(torch.device(kind)) is (kind == "cuda")
