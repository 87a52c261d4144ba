import math

import pytest

from skinr1.evaluation import accuracy, invalid_rate, macro_f1, prompt_for, summarise, table
from skinr1.prompts import template, user_message


def rec(ds, answer, strict, n_options=3):
    return {
        "dataset": ds,
        "answer": answer,
        "strict": strict,
        "correct": strict == answer,
        "invalid": strict is None,
        "n_options": n_options,
    }


RECORDS = [
    rec("HAM10000", "A", "A"),
    rec("HAM10000", "B", "A"),
    rec("HAM10000", "C", None),
    rec("PAD-UFES-20", "A", "A"),
    rec("PAD-UFES-20", "B", "B"),
]


def test_accuracy_invalid_rate_and_macro_f1_by_hand():
    assert accuracy(RECORDS) == pytest.approx(3 / 5)
    assert invalid_rate(RECORDS) == pytest.approx(1 / 5)
    # A: tp 2, fp 1, fn 0 -> 4/5; B: tp 1, fp 0, fn 1 -> 2/3; C: tp 0, fp 0, fn 1 -> 0.
    assert macro_f1(RECORDS) == pytest.approx((4 / 5 + 2 / 3 + 0) / 3)
    assert math.isnan(accuracy([]))


def test_refusing_to_answer_does_not_raise_f1():
    all_invalid = [rec("X", "A", None), rec("X", "B", None)]
    assert macro_f1(all_invalid) == 0.0


def test_summarise_averages_datasets_unweighted_and_tables_like_the_paper():
    s = summarise(RECORDS, with_f1=True)
    assert s["per_dataset"]["HAM10000"]["acc"] == pytest.approx(1 / 3)
    assert s["per_dataset"]["PAD-UFES-20"]["acc"] == 1.0
    assert s["avg_acc"] == pytest.approx((1 / 3 + 1) / 2)
    assert s["pooled_acc"] == pytest.approx(3 / 5)
    assert s["answer_distribution"] == {"A": 3, "invalid": 1, "B": 1}
    assert s["chance"] == pytest.approx(1 / 3) and s["options"] == {3: 5}
    mixed = summarise([rec("X", "A", "A", 2), rec("X", "A", "A", 4)])
    assert mixed["chance"] == pytest.approx((1 / 2 + 1 / 4) / 2) and mixed["options"] == {
        2: 1,
        4: 1,
    }
    t = table({"base": s, "sft_rl": summarise(RECORDS[:1])})
    assert list(t.columns) == ["HAM10000", "PAD-UFES-20", "Avg.", "Avg. (weighted)"]
    # the paper's Avg. weighs each dataset by its test size: for accuracy, the pooled accuracy
    assert t.loc["Base (no fine-tuning)", "Avg. (weighted)"] == pytest.approx(3 / 5)
    f1 = s["per_dataset"]
    assert s["wavg_f1"] == pytest.approx(
        (3 * f1["HAM10000"]["f1"] + 2 * f1["PAD-UFES-20"]["f1"]) / 5
    )
    assert list(t.index) == ["Base (no fine-tuning)", "Skin-R1 (SFT + RL)"]
    assert math.isnan(t.loc["Skin-R1 (SFT + RL)", "PAD-UFES-20"])


def test_prompt_for_each_kind_uses_its_appendix_d_template():
    row = {"kind": "disease", "question": "Q? A: x B: y", "letters": ["A", "B"]}
    assert "answer: Q? A: x B: y" in prompt_for(row) and "(A/B)" in prompt_for(row)
    assert "Only output one option: A, B, or C." in prompt_for({**row, "kind": "lesion"})
    assert "choose the most likely diagnosis from the options" in prompt_for({**row, "kind": "ood"})
    # Compact: SFT's own instruction, word for word, then the question with its options.
    assert prompt_for(row, "compact") == template("sft_type1", "compact") + " Q? A: x B: y"


def test_user_message_places_the_image_by_style():
    assert user_message("t") == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "t"}]}
    ]
    assert user_message("t", "compact") == [
        {"role": "user", "content": [{"type": "text", "text": "t"}, {"type": "image"}]}
    ]


def test_vllm_backend_sends_the_chat_prompt_and_the_image_greedily(monkeypatch):
    """``VLLMGenerator`` through a stand-in ``vllm`` module (vLLM cannot share this torch):
    one image per prompt, the processor's chat text with the image placeholder, temperature 0,
    the answers in order."""
    import sys
    import types

    from PIL import Image

    from skinr1.evaluation import VLLMGenerator, answer_questions

    seen = {}

    class LLM:
        def __init__(self, **kw):
            seen["init"] = kw

        def generate(self, inputs, params, use_tqdm):
            seen["inputs"], seen["params"] = inputs, params
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(
                text="<thinking>x</thinking> <final diagnosis>B</final diagnosis>")])
                for _ in inputs]  # fmt: skip

    fake = types.ModuleType("vllm")
    fake.LLM = LLM
    fake.SamplingParams = lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake)

    class Processor:
        def apply_chat_template(self, messages, add_generation_prompt, tokenize):
            assert add_generation_prompt and not tokenize
            text = "".join(c.get("text") or "<|vision_start|><|image_pad|><|vision_end|>"
                           for c in messages[0]["content"])  # fmt: skip
            return f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"

    gen = VLLMGenerator("models/m", max_model_len=4096, gpu_memory_utilization=0.4)
    assert seen["init"] == {"model": "models/m", "limit_mm_per_prompt": {"image": 1},
                            "max_model_len": 4096, "gpu_memory_utilization": 0.4,
                            "trust_remote_code": False}  # fmt: skip
    img = Image.new("RGB", (8, 8))
    out = gen(Processor(), ["Q1", "Q2"], [img, img], max_new_tokens=7, prompt_style="compact")
    assert out == ["<thinking>x</thinking> <final diagnosis>B</final diagnosis>"] * 2
    assert seen["params"] == {"temperature": 0.0, "max_tokens": 7}
    assert [i["prompt"].count("<|image_pad|>") for i in seen["inputs"]] == [1, 1]
    assert "Q2" in seen["inputs"][1]["prompt"] and seen["inputs"][1]["multi_modal_data"]["image"]
    row = {"id": "q", "dataset": "d", "kind": "disease", "answer": "B", "letters": ["A", "B"],
           "options": ["x", "y"], "question": "Q?", "image": None}  # fmt: skip
    monkeypatch.setattr("PIL.Image.open", lambda p: img)
    rec = answer_questions(gen, Processor(), [row], batch_size=4, max_new_tokens=7,
                           prompt_style="compact")  # fmt: skip
    assert rec[0]["strict"] == "B" and rec[0]["correct"]


def test_headline_metrics_are_flat_per_model_and_skip_what_was_not_evaluated():
    from skinr1.evaluation import headline

    metrics = {
        "disease": {"sft": {"avg_acc": 0.51234, "pooled_acc": 0.5, "invalid_rate": 0.1},
                    "base": {"avg_acc": 0.2, "pooled_acc": 0.25, "invalid_rate": 0.0}},
        "lesion": {"sft": {"avg_acc": 0.7, "pooled_acc": 0.7, "invalid_rate": 0.0, "avg_f1": 0.6}},
    }  # fmt: skip
    out = headline(metrics)
    assert list(out) == ["base", "sft"]
    assert out["sft"] == {"disease_acc": 0.5123, "disease_pooled_acc": 0.5,
                          "disease_invalid": 0.1, "lesion_acc": 0.7, "lesion_f1": 0.6}  # fmt: skip
    assert out["base"] == {"disease_acc": 0.2, "disease_pooled_acc": 0.25, "disease_invalid": 0.0}


def test_invalid_reasons_by_cause():
    from skinr1.evaluation import invalid_reasons

    def rec(model, response, invalid, kind="disease"):
        return {"model": model, "set": kind, "response": response, "invalid": invalid}

    fd = "<thinking>x</thinking> <final diagnosis>{}</final diagnosis>"
    records = [
        rec("sft", fd.format("B"), False),
        rec("sft", "<thinking>x</thinking> melanoma", True),  # no block
        rec("sft", fd.format("A") + fd.format("A"), True),  # repeated block
        rec("sft", fd.format("black colour indicate melanoma"), True),  # reasoning, no option
        rec("sft", fd.format("A versus B"), True),  # reasoning naming two options
        rec("sft", fd.format("benign"), True),  # no option named, no reasoning
        rec("base", fd.format("C"), False),
        rec("base", fd.format("C"), True, kind="lesion"),  # another set: not counted
    ]
    table = invalid_reasons(records, "disease")
    assert table.loc["SFT"].to_dict() == {
        "answers": 6, "invalid": 5, "no single answer block": 2,
        "block names no single option": 3, "of which reasoning in the block": 2,
    }  # fmt: skip
    assert table.loc["Base (no fine-tuning)"].to_dict() == {
        "answers": 1, "invalid": 0, "no single answer block": 0,
        "block names no single option": 0, "of which reasoning in the block": 0,
    }  # fmt: skip


def test_skin_types_fill_rows_without_one_and_a_missing_file_names_the_parameter(tmp_path):
    from skinr1.evaluation import _with_skin_types

    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"")
    csv = tmp_path / "annotations.csv"
    csv.write_text("image,fitzpatrick\na.png,5\nb.png,2\n")
    rows = [{"image": str(tmp_path / "a.png"), "skin_type": None},
            {"image": str(tmp_path / "b.png"), "skin_type": 4},  # the loader's own record wins
            {"image": str(tmp_path / "c.png"), "skin_type": None}]  # fmt: skip
    out = _with_skin_types({"disease": rows}, str(csv))
    assert [r["skin_type"] for r in out["disease"]] == [5, 4, None]
    with pytest.raises(FileNotFoundError, match="evaluation.skin_types.*null"):
        _with_skin_types({"disease": rows}, str(tmp_path / "missing.csv"))
