"""checkpoints/: the directory format - weights, resume states, meta.json - and what survives damage and crashes."""

import dataclasses
import json
import os
import stat

import pytest
import torch
from records import record
from safetensors import safe_open

from diffmodel.checkpoints import store as checkpoint
from diffmodel.checkpoints.meta import ModelMeta, architecture
from diffmodel.checkpoints.store import (LEGACY_WEIGHTS, WEIGHTS, CheckpointError, check_architecture, load_state,
                                         load_weights, save)
from diffmodel.config import ModelConfig
from diffmodel.errors import UserError
from diffmodel.files import WriteError, atomic_write, sha256_file, write_json
from diffmodel.model.unet import UNet

CONFIG = ModelConfig(channels=16, channel_mults=(1, 2), blocks_per_level=1, attention_resolutions=(8,),
                     head_channels=8, groups=4)


def trained_looking_model(seed=0):
    """A small U-Net with no zero weights left, so outputs depend on every tensor."""
    torch.manual_seed(seed)
    model = UNet(CONFIG, image_size=16).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    return model


def state_for(step, model):
    return {"online": model.state_dict(), "ema": model.state_dict(), "epoch": step // 10, "step": step,
            "rng": torch.Generator().manual_seed(step).get_state()}


def save_steps(directory, steps, model, meta=None):
    meta = meta or record()
    for step in steps:
        meta = save(directory, state_for(step, model), meta)
    return meta


def rewrite_meta(directory, **changes) -> None:
    write_json(directory / "meta.json", {**json.loads((directory / "meta.json").read_text()), **changes})


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


class NotData:
    """Arbitrary Python object: must never be unpickled from a checkpoint."""


# ----------------------------------------------------------------------------- weights round trip

def test_saved_weights_load_identical_and_give_identical_outputs(tmp_path):
    model = trained_looking_model()
    save_steps(tmp_path, [10], model, record(complete=True))
    weights, meta = load_weights(tmp_path)
    assert meta.task == "inpainting" and meta.complete
    original = model.state_dict()
    assert weights["ema"].keys() == original.keys()
    assert all(torch.equal(weights["ema"][k], original[k]) for k in original)

    loaded = UNet(CONFIG, image_size=16).eval()
    loaded.load_state_dict(weights["ema"])
    x, gamma = torch.randn(2, 6, 16, 16), torch.rand(2)
    with torch.no_grad():
        assert torch.equal(loaded(x, gamma), model(x, gamma))


def test_meta_names_only_the_newest_two_states(tmp_path):
    model = trained_looking_model()
    meta = save_steps(tmp_path, [10, 20, 30], model)
    assert [s.step for s in meta.states] == [30, 20]
    assert sorted(p.name for p in tmp_path.glob("state-*.pt")) == ["state-000000020.pt", "state-000000030.pt"]
    assert ModelMeta.read(tmp_path) == meta
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind
    assert load_state(tmp_path, meta)["step"] == 30


# ----------------------------------------------------------------------------- damaged files

def test_truncated_weights_are_rejected_with_one_line(tmp_path):
    save_steps(tmp_path, [10], trained_looking_model(), record(complete=True))
    truncate(tmp_path / WEIGHTS)
    with pytest.raises(CheckpointError, match="does not match meta.json") as err:
        load_weights(tmp_path)
    assert "\n" not in str(err.value) and WEIGHTS in str(err.value)


def test_unreadable_weights_with_a_matching_checksum_are_rejected(tmp_path):
    save_steps(tmp_path, [10], trained_looking_model(), record(complete=True))
    truncate(tmp_path / WEIGHTS)
    rewrite_meta(tmp_path, weights_sha256=sha256_file(tmp_path / WEIGHTS))
    with pytest.raises(CheckpointError, match="cannot be read") as err:
        load_weights(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("weights_file", [WEIGHTS, LEGACY_WEIGHTS])
def test_weights_are_data_never_code(tmp_path, weights_file):
    save_steps(tmp_path, [10], trained_looking_model(), record(complete=True))
    (tmp_path / WEIGHTS).unlink()
    torch.save({"ema": NotData()}, tmp_path / weights_file)  # a pickle, in either file
    rewrite_meta(tmp_path, weights_sha256=sha256_file(tmp_path / weights_file))
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_weights(tmp_path)


def test_the_weights_file_is_safetensors_describing_its_model(tmp_path):
    model = trained_looking_model()
    save_steps(tmp_path, [10], model, record(complete=True))
    with safe_open(tmp_path / WEIGHTS, "pt") as f:  # the reference reader, no torch.load anywhere
        about = json.loads(f.metadata()[checkpoint.METADATA_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert tensors.keys() == model.state_dict().keys()
    assert all(torch.equal(tensors[k], v) for k, v in model.state_dict().items())
    assert about["name"] == record().name and about["task"] == record().task
    assert about["architecture"] == record().architecture and about["parent_sha256"] is None
    assert about["diffusion"] == record().diffusion and about["classes"] == record().classes
    # the safetensors layout: an 8-byte header length, the JSON header, the tensors' bytes and nothing else
    raw = (tmp_path / WEIGHTS).read_bytes()
    tensor_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    assert len(raw) == 8 + int.from_bytes(raw[:8], "little") + tensor_bytes


def test_the_weights_file_alone_loads_and_samples_like_its_directory(tmp_path):
    """What `dvc artifacts get` fetches: model.safetensors without meta.json beside it."""
    from diffmodel.model.inference import load_model

    model = trained_looking_model()
    save_steps(tmp_path / "model", [10], model, record(model=CONFIG, image_size=16, complete=True))
    lone = tmp_path / "fetched.safetensors"
    lone.write_bytes((tmp_path / "model" / WEIGHTS).read_bytes())
    from_file, from_directory = load_model(lone), load_model(tmp_path / "model")
    assert from_file.meta.weights_sha256 == sha256_file(lone) == from_directory.meta.weights_sha256
    assert (from_file.task.name, from_file.image_size) == (from_directory.task.name, from_directory.image_size)
    assert from_file.schedule.cfg == from_directory.schedule.cfg
    x, gamma = torch.randn(2, 6, 16, 16), torch.rand(2)
    with torch.no_grad():
        assert torch.equal(from_file.network(x, gamma), from_directory.network(x, gamma))


def test_a_lone_delta_or_foreign_file_is_refused_in_one_line(tmp_path):
    save_steps(tmp_path / "delta", [10], trained_looking_model(), record(complete=True, stores="delta", method="lora"))
    with pytest.raises(CheckpointError, match="only the tensors PEFT trained.*diffmodel export"):
        load_weights(tmp_path / "delta" / WEIGHTS)
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="does not describe a diffmodel model"):
        load_weights(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="not a diffmodel weights file"):
        load_weights(tmp_path / "junk.safetensors")


def test_a_directory_written_before_safetensors_still_loads(tmp_path):
    model = trained_looking_model()
    save_steps(tmp_path, [10], model, record(complete=True))
    (tmp_path / WEIGHTS).unlink()
    torch.save({"ema": model.state_dict()}, tmp_path / LEGACY_WEIGHTS)  # what model.pt held
    rewrite_meta(tmp_path, weights_sha256=sha256_file(tmp_path / LEGACY_WEIGHTS))
    weights, _ = load_weights(tmp_path)
    assert all(torch.equal(weights["ema"][k], v) for k, v in model.state_dict().items())


def test_unfinished_or_missing_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_weights(tmp_path)
    save_steps(tmp_path, [10], trained_looking_model(), record(complete=False, epoch=1, epochs=12))
    with pytest.raises(CheckpointError, match="not finished"):
        load_weights(tmp_path)


def test_truncated_newest_state_falls_back_to_the_older_one(tmp_path):
    meta = save_steps(tmp_path, [10, 20], trained_looking_model())
    truncate(tmp_path / "state-000000020.pt")
    messages = []
    state = load_state(tmp_path, meta, log=messages.append)
    assert state["step"] == 10
    assert len(messages) == 1 and "state-000000020.pt" in messages[0] and "corrupted" in messages[0]


def test_saving_after_a_fallback_keeps_the_intact_state_not_the_damaged_one(tmp_path):
    # resumed from step 10 because state 20 is damaged; the next save (step 15) must keep
    # state 10 as its fallback, not the damaged state 20 from the abandoned run
    model = trained_looking_model()
    meta = save_steps(tmp_path, [10, 20], model)
    truncate(tmp_path / "state-000000020.pt")
    assert load_state(tmp_path, meta, log=lambda message: None)["step"] == 10
    meta = save(tmp_path, state_for(15, model), meta)
    assert [s.step for s in meta.states] == [15, 10]
    assert sorted(p.name for p in tmp_path.glob("state-*.pt")) == ["state-000000010.pt", "state-000000015.pt"]
    (tmp_path / "state-000000015.pt").write_bytes(b"damaged as well")
    assert load_state(tmp_path, meta, log=lambda message: None)["step"] == 10


def test_state_that_hashes_right_but_does_not_load_is_skipped(tmp_path):
    meta = save_steps(tmp_path, [10, 20], trained_looking_model())
    newest = tmp_path / "state-000000020.pt"
    torch.save({"step": NotData()}, newest)
    meta.states[0] = dataclasses.replace(meta.states[0], sha256=sha256_file(newest))
    messages = []
    assert load_state(tmp_path, meta, log=messages.append)["step"] == 10
    assert "cannot be read" in messages[0]


def test_no_intact_state_gives_none(tmp_path):
    meta = save_steps(tmp_path, [10, 20], trained_looking_model())
    truncate(tmp_path / "state-000000020.pt")
    (tmp_path / "state-000000010.pt").unlink()
    messages = []
    assert load_state(tmp_path, meta, log=messages.append) is None
    assert len(messages) == 2


# ----------------------------------------------------------------------------- architecture

def test_check_architecture_names_the_key_that_differs(tmp_path):
    expected = {"model.channels": 32, "model.channel_mults": [1, 2, 2], "data.image_size": 32}
    check_architecture(expected, dict(expected), tmp_path)
    with pytest.raises(CheckpointError, match=r"model\.channel_mults=\[1, 2\] but params.yaml has \[1, 2, 2\]"):
        check_architecture(expected, {**expected, "model.channel_mults": [1, 2]}, tmp_path)
    without_size = {k: v for k, v in expected.items() if k != "data.image_size"}
    with pytest.raises(CheckpointError, match=r"data\.image_size=None"):
        check_architecture(expected, without_size, tmp_path)


def test_architecture_survives_the_round_trip_through_meta_json(tmp_path):
    arch = architecture(ModelConfig(), 32)
    stored = json.loads(json.dumps(arch))  # tuples come back as lists
    check_architecture(arch, stored, tmp_path)


# ----------------------------------------------------------------------------- atomic writes

def test_full_disk_keeps_the_previous_file_and_reports_one_line(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"previous weights")

    def full_disk(f):
        f.write(b"half of the new wei")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError) as err:
        atomic_write(path, full_disk)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and "No space left on device" in message and "previous state is kept" in message
    assert path.read_bytes() == b"previous weights"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # temp file removed


def test_torch_save_failure_is_reported_in_one_line(tmp_path):
    path = tmp_path / "state.pt"
    path.write_bytes(b"previous")

    def failing_save(f):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 128 vs 64\nframe #0: ...")

    with pytest.raises(WriteError) as err:
        atomic_write(path, failing_save)
    assert "\n" not in str(err.value) and "unexpected pos" in str(err.value)
    assert path.read_bytes() == b"previous"


def test_other_errors_pass_through_and_leave_no_temp_file(tmp_path):
    def bug(f):
        raise KeyError("a programming error stays visible")

    with pytest.raises(KeyError):
        atomic_write(tmp_path / "x.json", bug)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_creates_the_directory_and_replaces_the_file(tmp_path):
    path = tmp_path / "new" / "meta.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}


def test_unreadable_meta_reads_as_no_checkpoint(tmp_path):
    (tmp_path / "meta.json").write_text('{"complete": tr')
    assert checkpoint.read_meta(tmp_path) is None


# ----------------------------------------------------------------------------- crashes in the middle of a save

def two_models_saved(tmp_path):
    """Two models: the first saved whole (step 10, complete), the second to be saved over it (step 20)."""
    old, new = trained_looking_model(0), trained_looking_model(1)
    meta = save_steps(tmp_path, [10], old, record(complete=True))
    return old, new, meta


def test_a_crash_before_the_commit_leaves_the_old_model_whole(tmp_path, monkeypatch):
    old, new, meta = two_models_saved(tmp_path)
    monkeypatch.setattr(ModelMeta, "write", lambda self, directory: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError):
        save(tmp_path, state_for(20, new), meta)
    weights, _ = load_weights(tmp_path)
    assert all(torch.equal(weights["ema"][k], v) for k, v in old.state_dict().items())


def test_a_crash_after_the_commit_is_repaired_from_the_state_it_names(tmp_path, monkeypatch):
    old, new, meta = two_models_saved(tmp_path)
    real_write = checkpoint.atomic_write

    def killed_at_the_weights(path, write):
        if path.name == checkpoint.WEIGHTS:
            raise OSError("killed")
        real_write(path, write)

    monkeypatch.setattr(checkpoint, "atomic_write", killed_at_the_weights)
    with pytest.raises(OSError):
        save(tmp_path, state_for(20, new), meta)
    monkeypatch.setattr(checkpoint, "atomic_write", real_write)
    with pytest.raises(CheckpointError, match="its last save was interrupted") as err:
        load_weights(tmp_path)  # never the old weights under the new record
    assert "\n" not in str(err.value)
    assert checkpoint.repair(tmp_path, ModelMeta.read(tmp_path))
    weights, meta = load_weights(tmp_path)
    assert meta.states[0].step == 20
    assert all(torch.equal(weights["ema"][k], v) for k, v in new.state_dict().items())


# ----------------------------------------------------------------------------- records written by older versions

def test_a_model_saved_before_prediction_existed_samples_as_eps(tmp_path):
    from diffmodel.model.inference import load_model

    save_steps(tmp_path, [10], trained_looking_model(), record(model=CONFIG, image_size=16, complete=True))
    raw = json.loads((tmp_path / "meta.json").read_text())
    assert raw["diffusion"]["prediction"] == "v"  # today's default
    del raw["diffusion"]["prediction"]
    write_json(tmp_path / "meta.json", raw)
    assert load_model(tmp_path).schedule.cfg.prediction == "eps"


def test_a_recorded_key_of_unknown_old_meaning_is_refused_in_one_line(tmp_path):
    save_steps(tmp_path, [10], trained_looking_model(), record(model=CONFIG, image_size=16, complete=True))
    raw = json.loads((tmp_path / "meta.json").read_text())
    del raw["diffusion"]["beta_end"]
    write_json(tmp_path / "meta.json", raw)
    with pytest.raises(UserError, match="records no diffusion.beta_end") as err:
        ModelMeta.read(tmp_path).diffusion_config()
    assert "\n" not in str(err.value)


def test_every_key_added_to_a_recorded_section_says_what_it_meant_before():
    from diffmodel.config import BEFORE_KEY_EXISTED, DiffusionConfig

    # the keys meta.json recorded from the first version on (git show 9e7fe35:diffmodel/config.py)
    first = {"diffusion": {"steps", "beta_start", "beta_end", "loss"},
             "model": {"channels", "channel_mults", "blocks_per_level", "attention_resolutions", "head_channels", "groups"}}
    for section, cls in (("diffusion", DiffusionConfig), ("model", ModelConfig)):
        added = {f.name for f in dataclasses.fields(cls)} - first[section]
        assert {f"{section}.{name}" for name in added} <= set(BEFORE_KEY_EXISTED), section


def test_a_version_1_record_reads_with_the_values_before_its_fields_existed(tmp_path):
    save_steps(tmp_path, [10], trained_looking_model(), record(complete=True))
    raw = json.loads((tmp_path / "meta.json").read_text())
    for key in ("version", "method", "stores", "classes", "trainable", "training_state_mb"):
        del raw[key]
    write_json(tmp_path / "meta.json", raw)
    meta = ModelMeta.read(tmp_path)
    assert (meta.version, meta.method, meta.stores, meta.classes) == (1, "full", "full", None)


def test_a_record_from_a_newer_version_is_refused(tmp_path):
    save_steps(tmp_path, [10], trained_looking_model(), record(complete=True))
    rewrite_meta(tmp_path, version=99)
    with pytest.raises(CheckpointError, match="newer diffmodel"):
        load_weights(tmp_path)


def test_written_files_get_the_usual_permissions_not_a_temp_files_private_ones(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "shared.json", lambda f: f.write(b"{}"))
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o644  # mkstemp alone gives 0o600
