from pathlib import Path

import pytest
import yaml

from skinr1.config import ParamsError, checkpoint_dir, load_params

REPO = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    mutate(raw)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_shipped_params_validate_with_every_section_complete():
    p = load_params(REPO / "params.yaml", require=tuple(
        ["demo", "data", "base_model", "model", "knowledge", "trajectories", "lora", "sft",
         "grpo", "evaluation", "qualitative"]))  # fmt: skip
    assert p.seed == 1234
    assert p.lora.r == 64 and p.lora.alpha == 32 and p.lora.dropout == 0.1
    assert p.grpo_runs == {"sft_rl": "models/sft", "rl_without_sft": "models/base"}
    assert p.grpo.num_generations == 4 and p.grpo.temperature == 1.0
    assert p.grpo.loss_type == "grpo" and p.grpo.beta > 0
    assert p["grpo"]["granularity_norm"] == "sampled"


def test_misspelt_parameter_is_named_with_a_suggestion(tmp_path):
    path = _write(tmp_path, lambda r: r["sft"].__setitem__("learnin_rate", 1e-3))
    with pytest.raises(
        ParamsError, match=r"unknown parameter sft\.learnin_rate \(did you mean 'learning_rate'\?\)"
    ):
        load_params(path)


def test_missing_parameter_of_a_required_section_is_named(tmp_path):
    path = _write(tmp_path, lambda r: r["grpo"].pop("beta"))
    with pytest.raises(ParamsError, match=r"missing parameter grpo\.beta"):
        load_params(path, require=("grpo",))
    # The whole file is validated at every stage: no section's value comes from code.
    with pytest.raises(ParamsError, match=r"missing parameter grpo\.beta"):
        load_params(path, require=("sft",))
    with pytest.raises(ParamsError, match=r"missing section 'qualitative'"):
        load_params(_write(tmp_path, lambda r: r.pop("qualitative")))


def test_unknown_section_missing_seed_and_bad_choice(tmp_path):
    with pytest.raises(ParamsError, match=r"unknown section 'sfft' \(did you mean 'sft'\?\)"):
        load_params(_write(tmp_path, lambda r: r.__setitem__("sfft", {})))
    with pytest.raises(ParamsError, match="missing parameter seed"):
        load_params(_write(tmp_path, lambda r: r.pop("seed")))
    with pytest.raises(
        ParamsError,
        match=r"grpo\.granularity_norm = 'depth' is not one of 'sampled', 'path', 'finest'",
    ):
        load_params(_write(tmp_path, lambda r: r["grpo"].__setitem__("granularity_norm", "depth")))
    with pytest.raises(
        ParamsError,
        match=r"grpo\.deep_question_repeat = 0: input should be greater than or equal to 1",
    ):
        load_params(_write(tmp_path, lambda r: r["grpo"].__setitem__("deep_question_repeat", 0)))
    with pytest.raises(ParamsError, match="parameter file not found"):
        load_params(tmp_path / "nope.yaml")


def test_checkpoint_dir_is_keyed_by_everything_that_shapes_the_run():
    a = checkpoint_dir("sft", {"lr": 1e-3}, 1234, "fp")
    assert a == checkpoint_dir("sft", {"lr": 1e-3}, 1234, "fp")
    assert a != checkpoint_dir("sft", {"lr": 2e-3}, 1234, "fp")
    assert a != checkpoint_dir("sft", {"lr": 1e-3}, 1234, "other-data")
    assert a.parent == Path("models/checkpoints") and a.name.startswith("sft-")


def test_fingerprint_changes_with_model_content_not_with_the_path(tmp_path):
    from skinr1.config import fingerprint

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"\x00" * 3_000_000)
    assert fingerprint(str(a)) == fingerprint(str(b))  # same content, other folder
    (b / "model.safetensors").write_bytes(b"\x00" * 2_999_999 + b"\x01")  # last byte differs
    assert fingerprint(str(a)) != fingerprint(str(b))
    assert fingerprint("Qwen/Qwen2.5-VL-7B-Instruct") == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert fingerprint(None) == "none"


def test_fingerprint_hashes_checkpoint_folders_but_not_checkpoints_inside(tmp_path):
    from skinr1.config import fingerprint

    a, b = tmp_path / "checkpoint-100", tmp_path / "checkpoint-200"
    for d, byte in ((a, b"\x01"), (b, b"\x02")):
        d.mkdir()
        (d / "adapter_model.safetensors").write_bytes(byte * 1000)
    assert fingerprint(str(a)) != fingerprint(str(b))  # two adapters, two keys
    run = tmp_path / "run"
    (run / "checkpoint-5").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    before = fingerprint(str(run))
    (run / "checkpoint-5" / "optimizer.pt").write_bytes(b"\x00" * 10)
    assert fingerprint(str(run)) == before  # a checkpoint saved inside changes nothing


def test_wrong_types_and_choices_name_the_key_the_file_and_what_is_expected(tmp_path):
    path = _write(tmp_path, lambda r: r["sft"].__setitem__("epochs", "many"))
    with pytest.raises(ParamsError, match=r"params.yaml: sft\.epochs = 'many': input should be a "
                       r"valid number.*expected <class 'float'>"):  # fmt: skip
        load_params(path)
    path = _write(tmp_path, lambda r: r["grpo"].__setitem__("engine", "deepspeed"))
    with pytest.raises(
        ParamsError, match=r"grpo\.engine = 'deepspeed' is not one of 'trl', 'unsloth'"
    ):
        load_params(path)
    path = _write(tmp_path, lambda r: r["evaluation"].__setitem__("sets", ["disease", "dx"]))
    with pytest.raises(ParamsError, match=r"evaluation\.sets\.1 = 'dx' is not one of 'disease'"):
        load_params(path)
    path = _write(tmp_path, lambda r: r["compute"].__setitem__("num_processes", 1.5))
    with pytest.raises(ParamsError, match=r"compute\.num_processes = 1\.5"):
        load_params(path)
    p = load_params(REPO / "params.yaml")
    with pytest.raises(ValueError):  # assignments are validated too
        p.grpo.beta = "high"


def test_grpo_runs_names_known_runs_from_the_folders_they_start_from(tmp_path):
    def runs(value):
        return _write(tmp_path, lambda r: r.__setitem__("grpo_runs", value))

    assert load_params(runs({"sft_rl": "models/sft"})).grpo_runs == {"sft_rl": "models/sft"}
    # listed in the order of the table, whatever the file's order
    both = load_params(runs({"rl_without_sft": "models/base", "sft_rl": "models/sft"}))
    assert list(both.grpo_runs) == ["sft_rl", "rl_without_sft"]
    with pytest.raises(ParamsError, match=r"unknown run grpo_runs.sft_lr \(did you mean 'sft_rl'"):
        load_params(runs({"sft_rl": "models/sft", "sft_lr": "models/sft"}))
    with pytest.raises(ParamsError, match=r"grpo_runs.sft_rl = 'models/base', but .* 'models/sft'"):
        load_params(runs({"sft_rl": "models/base"}))
    with pytest.raises(ParamsError, match="must map run names .* include sft_rl"):
        load_params(runs(["sft_rl"]))
    with pytest.raises(ParamsError, match="missing section 'grpo_runs'"):
        load_params(_write(tmp_path, lambda r: r.pop("grpo_runs")))


def test_mixed_precision_no_unquoted_reads_as_no(tmp_path):
    """`dvc exp run -S` rewrites params.yaml with `mixed_precision: no` unquoted, which
    PyYAML reads as False; it means "no", any other boolean is refused."""
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text().replace('mixed_precision: "no"',
                                                               "mixed_precision: no"))  # fmt: skip
    assert load_params(path).compute.mixed_precision == "no"
    path.write_text(path.read_text().replace("mixed_precision: no", "mixed_precision: yes"))
    with pytest.raises(ParamsError, match="compute.mixed_precision = True is not one of 'no'"):
        load_params(path)
