import pytest

from skinr1.embedded.tiny_model import (
    SPECIAL_TOKENS,
    TAG_TOKENS,
    TinyConfig,
    build_tiny_model,
)
from skinr1.model import check_model_source

pytestmark = pytest.mark.slow


def test_tiny_model_builds_reloads_and_generates_from_an_image(tmp_path):
    import numpy as np
    from PIL import Image

    from skinr1.evaluation import generate
    from skinr1.model import load_model, load_processor

    cfg = TinyConfig(vocab_size=600, hidden_size=64, num_layers=1, num_heads=2, num_kv_heads=1,
                     intermediate_size=128, vision_depth=1, vision_hidden=32, vision_heads=2,
                     image_size=56)  # fmt: skip
    build_tiny_model(tmp_path, cfg, seed=0)
    proc = load_processor(str(tmp_path), max_pixels=56 * 56, min_pixels=56 * 56)
    # An explicit multimodal processor: a bare tokenizer would make TRL treat the model as text-only.
    assert type(proc).__name__ == "ImageOnlyQwen2_5_VLProcessor"
    tok = proc.tokenizer
    for t in SPECIAL_TOKENS + TAG_TOKENS:
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    model = load_model(str(tmp_path))
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    img = Image.fromarray(np.full((64, 64, 3), 128, dtype=np.uint8))
    enc = proc(text=[proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}],
                                              add_generation_prompt=True, tokenize=False)],
               images=[img], return_tensors="pt")  # fmt: skip
    # 56x56 -> 4x4 patches of 14 -> 2x2 merge -> 4 image tokens in the prompt.
    assert (enc["input_ids"] == model.config.image_token_id).sum().item() == 4
    out = generate(model, proc, ["hi", "hello"], [img, img], batch_size=2, max_new_tokens=5)
    assert len(out) == 2 and all(isinstance(o, str) for o in out)


def test_missing_local_model_path_names_the_parameter_and_the_fix(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"model\.base = .*no config\.json there\. Run `dvc repro base_model`",
    ):
        check_model_source(str(tmp_path / "models" / "base"))
    check_model_source("Qwen/Qwen2.5-VL-7B-Instruct")  # a hub id is left to from_pretrained


def test_warmup_names_noisy_top_level_categories_and_never_a_diagnosis():
    import re

    from skinr1.embedded.tiny_model import warmup_examples
    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy

    tax = load_taxonomy()
    rules = load_rules(tax)
    top = {c for c in tax.categories() if len(tax.path(c)) == 1}
    fine = {n for n in tax.categories() if len(tax.path(n)) > 1}
    rows = warmup_examples(rules, 400, 3, image_size=32, prompt_style="compact", taxonomy=tax,
                           coarse_share=0.5, coarse_noise=0.3)  # fmt: skip
    coarse = []
    for r in rows:
        text = r["completion"][0]["content"][0]["text"]
        m = re.search(r"<final diagnosis>[A-D]: (.+)</final diagnosis>", text)
        if m and "abnormality" in r["prompt"][0]["content"][0]["text"]:
            coarse.append(m.group(1))
    assert 160 <= len(coarse) <= 240  # half of 400, drawn
    assert set(coarse) <= top and not set(coarse) & fine
    # the same seed gives the same examples; without coarse_share there are none
    again = warmup_examples(rules, 400, 3, image_size=32, prompt_style="compact", taxonomy=tax,
                            coarse_share=0.5, coarse_noise=0.3)  # fmt: skip
    assert [r["completion"] for r in again] == [r["completion"] for r in rows]
    plain = warmup_examples(rules, 50, 3, image_size=32, prompt_style="compact")
    assert not any("abnormality" in r["prompt"][0]["content"][0]["text"] for r in plain)
    with pytest.raises(ValueError, match="coarse_noise"):
        warmup_examples(rules, 5, 3, image_size=32, taxonomy=tax, coarse_share=0.5, coarse_noise=2)


def test_warmup_coarse_questions_in_the_evaluation_prompt_with_mixed_levels_and_names():
    import re

    from skinr1.embedded.tiny_model import warmup_examples
    from skinr1.prompts import template
    from skinr1.rewards import strict_answer
    from skinr1.rules import load_rules
    from skinr1.taxonomy import load_taxonomy

    tax = load_taxonomy()
    rules = load_rules(tax)
    top = {c for c in tax.categories() if len(tax.path(c)) == 1}
    head = template("diagnosis", "compact").split("{question}")[0]
    rows = warmup_examples(rules, 300, 3, image_size=32, prompt_style="compact", taxonomy=tax,
                           coarse_share=0.5, coarse_noise=0.2, coarse_prompt="diagnosis",
                           coarse_mixed=0.5, coarse_answer="name")  # fmt: skip
    coarse, below_top = [], 0
    for r in rows:
        prompt = r["prompt"][0]["content"][0]["text"]
        if "abnormality" not in prompt:
            continue
        assert prompt.startswith(head)
        opts = dict(re.findall(r"([A-D]): (.+?)(?= [A-D]: |$)", prompt.split("image? ")[1]))
        text = r["completion"][0]["content"][0]["text"]
        name = re.search(r"<final diagnosis>(.+)</final diagnosis>", text).group(1)
        assert name in top and name in opts.values()  # a category, never a fine diagnosis
        assert strict_answer(text, list(opts), list(opts.values())) is not None
        # no option lies under the stated category (it would be a finer correct answer)
        assert not set(opts.values()) & set(tax.descendants(name))
        below_top += sum(v not in top for v in opts.values())
        coarse.append(name)
    assert 110 <= len(coarse) <= 190 and below_top > 0  # distractors mix levels
    with pytest.raises(ValueError, match="coarse_answer"):
        warmup_examples(rules, 5, 3, image_size=32, taxonomy=tax, coarse_share=0.5,
                        coarse_answer="letters")  # fmt: skip
