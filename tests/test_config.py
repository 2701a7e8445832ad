import json
import textwrap
from pathlib import Path

import pytest

from diffmodel.config import ConfigError, Params, as_plain_dict, load_params


def params_file(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as err:
        load_params(params_file(tmp_path, text))
    message = str(err.value)
    assert "\n" not in message
    return message


def test_empty_file_and_missing_sections_give_defaults(tmp_path):
    assert load_params(params_file(tmp_path, "")) == Params()
    params = load_params(params_file(tmp_path, """
        train:
          epochs: 3
    """))
    assert params.train.epochs == 3
    assert params.train.batch_size == Params().train.batch_size
    assert params.model == Params().model and params.data == Params().data


def test_partial_section_keeps_that_sections_own_defaults(tmp_path):
    # adapt's defaults differ from train's; overriding one adapt key must not reset the others
    params = load_params(params_file(tmp_path, """
        adapt:
          lr: 0.0001
        data:
          faces: {}
          landscapes:
            train: 100
    """))
    assert params.adapt.lr == 1e-4
    assert params.adapt.epochs == Params().adapt.epochs != Params().train.epochs
    assert params.data.landscapes.classes == Params().data.landscapes.classes
    assert params.data.landscapes.superclasses == Params().data.landscapes.superclasses
    assert params.data.landscapes.train == 100


def test_data_section_without_its_domains_keeps_their_defaults(tmp_path):
    # `dvc exp run -S data.image_size=16` on a params.yaml that only sets data.image_size
    params = load_params(params_file(tmp_path, """
        data:
          image_size: 16
    """))
    assert params.data.image_size == 16
    assert params.data.faces == Params().data.faces
    assert params.data.landscapes == Params().data.landscapes


def test_unknown_key_is_named(tmp_path):
    message = load_error(tmp_path, """
        train:
          epochz: 3
    """)
    assert message.startswith("train.epochz: unknown key")
    assert "epochs" in message  # lists what is known


def test_unknown_section_is_named(tmp_path):
    assert load_error(tmp_path, "trian: {}\n").startswith("trian: unknown key")


@pytest.mark.parametrize("text,key", [
    ("train:\n  batch_size: many\n", "train.batch_size"),
    ("train:\n  epochs: 2.5\n", "train.epochs"),
    ("train:\n  epochs: true\n", "train.epochs"),
    ("model:\n  channel_mults: 2\n", "model.channel_mults"),
    ("model:\n  channel_mults: [1, two]\n", "model.channel_mults[1]"),
    ("diffusion:\n  loss: l3\n", "diffusion.loss"),
    ("evaluate:\n  sampler: euler\n", "evaluate.sampler"),
    ("evaluate:\n  steps: 50\n", "evaluate.steps"),  # one number for every task, as before steps per task
    ("data:\n  faces: [1, 2]\n  landscapes: {}\n", "data.faces"),
    ("train:\n  lr: fast\n", "train.lr"),
])
def test_wrong_type_names_the_key(tmp_path, text, key):
    assert load_error(tmp_path, text).startswith(f"{key}:")


def test_image_size_not_divisible_by_downsampling_is_named(tmp_path):
    message = load_error(tmp_path, """
        data:
          image_size: 36
          faces: {}
          landscapes: {}
        model:
          channel_mults: [1, 2, 2, 2]
          attention_resolutions: []
    """)
    assert message.startswith("data.image_size:") and "8" in message


def test_attention_resolution_must_exist_in_the_unet(tmp_path):
    message = load_error(tmp_path, """
        data:
          image_size: 32
          faces: {}
          landscapes: {}
        model:
          attention_resolutions: [12]
    """)
    assert message.startswith("model.attention_resolutions:") and "12" in message
    assert "[32, 16, 8]" in message  # tells the user what would work


def test_exponent_without_a_dot_parses_as_float(tmp_path):
    # YAML 1.1 reads 1e-4 as a string; the config must still take it as a number
    params = load_params(params_file(tmp_path, """
        train:
          lr: 1e-4
        diffusion:
          beta_start: 5e-5
          beta_end: 2e-2
    """))
    assert params.train.lr == 1e-4 and isinstance(params.train.lr, float)
    assert params.diffusion.beta_start == 5e-5 and params.diffusion.beta_end == 0.02


def test_integers_are_accepted_for_floats(tmp_path):
    params = load_params(params_file(tmp_path, "train:\n  checkpoint_every_minutes: 5\n"))
    assert params.train.checkpoint_every_minutes == 5.0
    assert isinstance(params.train.checkpoint_every_minutes, float)


@pytest.mark.parametrize("text,key", [
    ("train:\n  lr: 0\n", "train.lr"),
    ("train:\n  subset_epochs: -1\n", "train.subset_epochs"),
    ("data:\n  num_subsets: 8\n  faces:\n    train: 4\n  landscapes: {}\n", "data.faces.train"),
    ("data:\n  faces:\n    source: folder\n  landscapes: {}\n", "data.faces.root"),
    ("model:\n  groups: 5\n", "model.groups"),
    ("evaluate:\n  steps:\n    colorization: 0\n", "evaluate.steps.colorization"),
    ("samplers:\n  ddpm_models: [colorize_landscapes]\n", "samplers.ddpm_models"),
    ("diffusion:\n  beta_start: 0.1\n  beta_end: 0.01\n", "diffusion.beta_start/beta_end"),
])
def test_impossible_values_name_the_key(tmp_path, text, key):
    assert load_error(tmp_path, text).startswith(f"{key}:")


def test_missing_file_and_bad_yaml_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    assert "not valid YAML (line" in load_error(tmp_path, "train:\n  epochs: [1\n")


def test_plain_dict_is_json_ready():
    plain = as_plain_dict(Params())
    assert plain["model"]["channel_mults"] == [1, 2, 2]
    assert plain["data"]["landscapes"]["classes"] == ["alpine", "red_rock", "summer_forest", "autumn_forest"]
    assert plain["data"]["landscapes"]["superclasses"]["forest"] == ["summer_forest", "autumn_forest"]
    json.dumps(plain)


def test_the_code_defaults_are_what_params_yaml_runs():
    """One source of defaults: tests and benchmarks that build Params() exercise the pipeline's configuration."""
    assert load_params(Path(__file__).resolve().parents[1] / "params.yaml") == Params()


def test_peft_is_an_adaptation_method_only(tmp_path):
    assert load_params(params_file(tmp_path, "adapt: {method: lora}")).adapt.method == "lora"
    assert load_error(tmp_path, "adapt: {method: peft}") == ("adapt.method: must be one of full, finediffusion, "
                                                             "finediffusion_time, finediffusion_input, lora, got 'peft'")
    assert load_error(tmp_path, "train: {method: lora}").startswith("train.method: must be full")
    assert load_error(tmp_path, "peft_twins: {method: full}").startswith("peft_twins.method: must be one of finediffusion,")
    assert load_error(tmp_path, "adapt: {lora_rank: 0}") == "adapt.lora_rank: must be at least 1, got 0"
    assert load_error(tmp_path, "adapt: {lora_alpha: 0}") == "adapt.lora_alpha: must be positive, got 0.0"


def test_precision_is_auto_fp32_or_bf16_for_every_training_section(tmp_path):
    assert load_params(params_file(tmp_path, "adapt: {precision: bf16}")).adapt.precision == "bf16"
    assert load_error(tmp_path, "train: {precision: fp16}") == "train.precision: must be one of auto, fp32, bf16, got 'fp16'"


@pytest.mark.parametrize("superclasses,message", [
    ("{forest: [summer_forest, oak]}", "data.landscapes.superclasses: 'oak' is not one of data.landscapes.classes"),
    ("{a: [summer_forest], b: [summer_forest, autumn_forest]}", "'summer_forest' is in more than one superclass"),
    ("{forest: [summer_forest]}", "'autumn_forest' in no superclass"),
    ("[summer_forest]", "data.landscapes.superclasses: expected a mapping"),
])
def test_superclasses_must_group_every_class_once(tmp_path, superclasses, message):
    with pytest.raises(ConfigError, match=message):
        load_params(params_file(tmp_path, f"""
            data:
              landscapes:
                classes: [summer_forest, autumn_forest]
                superclasses: {superclasses}
        """))


def test_label_dropout_is_a_probability(tmp_path):
    with pytest.raises(ConfigError, match="adapt.label_dropout_all: must be in"):
        load_params(params_file(tmp_path, "adapt: {label_dropout_all: 1.5}"))
    with pytest.raises(ConfigError, match=r"adapt.label_dropout \+ adapt.label_dropout_all: must be at most 1"):
        load_params(params_file(tmp_path, "adapt: {label_dropout: 0.6, label_dropout_all: 0.6}"))
    with pytest.raises(ConfigError, match="evaluate.guidance: must be one of none, cfg, superclass"):
        load_params(params_file(tmp_path, "evaluate: {guidance: classifier}"))


def test_own_classes_without_superclasses_have_the_domain_as_superclass(tmp_path):
    # the default grouping is of the built-in classes: a Places2 user's classes must not inherit it
    params = load_params(params_file(tmp_path, """
        data:
          landscapes: {source: folder, root: /data/places, classes: [mountain, forest]}
    """))
    assert params.data.landscapes.classes == ("mountain", "forest") and params.data.landscapes.superclasses is None


def test_guidance_scales_are_listed_once(tmp_path):
    with pytest.raises(ConfigError, match="guidance.scales: a scale is listed twice"):
        load_params(params_file(tmp_path, "guidance: {scales: [2, 2.0]}"))
