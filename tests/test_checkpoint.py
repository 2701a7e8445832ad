import json

import pytest
import torch

from diffmodel import checkpoint
from diffmodel.checkpoint import CheckpointError, check_architecture, load_state, load_weights, save
from diffmodel.files import WriteError, atomic_write
from diffmodel.config import ModelConfig
from diffmodel.train import architecture
from diffmodel.unet import UNet

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
    meta = meta or {"task": "inpainting", "complete": False}
    for step in steps:
        meta = save(directory, state_for(step, model), {"ema": model.state_dict()}, meta)
    return meta


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


class NotData:
    """Arbitrary Python object: must never be unpickled from a checkpoint."""


# ----------------------------------------------------------------------------- weights round trip

def test_saved_weights_load_identical_and_give_identical_outputs(tmp_path):
    model = trained_looking_model()
    save_steps(tmp_path, [10], model, {"task": "inpainting", "complete": True})
    weights, meta = load_weights(tmp_path)
    assert meta["task"] == "inpainting" and meta["complete"]
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
    assert [s["step"] for s in meta["states"]] == [30, 20]
    assert sorted(p.name for p in tmp_path.glob("state-*.pt")) == ["state-000000020.pt", "state-000000030.pt"]
    assert json.loads((tmp_path / "meta.json").read_text()) == meta
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind
    assert load_state(tmp_path, meta)["step"] == 30


# ----------------------------------------------------------------------------- damaged files

def test_truncated_weights_are_rejected_with_one_line(tmp_path):
    save_steps(tmp_path, [10], trained_looking_model(), {"complete": True})
    truncate(tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="corrupted") as err:
        load_weights(tmp_path)
    assert "\n" not in str(err.value) and "model.pt" in str(err.value)


def test_unreadable_weights_with_a_matching_checksum_are_rejected(tmp_path):
    meta = save_steps(tmp_path, [10], trained_looking_model(), {"complete": True})
    truncate(tmp_path / "model.pt")
    checkpoint.write_json(tmp_path / "meta.json", {**meta, "weights_sha256": checkpoint.sha256_file(tmp_path / "model.pt")})
    with pytest.raises(CheckpointError, match="cannot be read") as err:
        load_weights(tmp_path)
    assert "\n" not in str(err.value)


def test_weights_are_data_never_code(tmp_path):
    meta = save_steps(tmp_path, [10], trained_looking_model(), {"complete": True})
    torch.save({"ema": NotData()}, tmp_path / "model.pt")
    checkpoint.write_json(tmp_path / "meta.json", {**meta, "weights_sha256": checkpoint.sha256_file(tmp_path / "model.pt")})
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_weights(tmp_path)


def test_unfinished_or_missing_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_weights(tmp_path)
    save_steps(tmp_path, [10], trained_looking_model(), {"complete": False, "epoch": 1, "epochs": 12})
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
    meta = save(tmp_path, state_for(15, model), {"ema": model.state_dict()}, meta)
    assert [s["step"] for s in meta["states"]] == [15, 10]
    assert sorted(p.name for p in tmp_path.glob("state-*.pt")) == ["state-000000010.pt", "state-000000015.pt"]
    (tmp_path / "state-000000015.pt").write_bytes(b"damaged as well")
    assert load_state(tmp_path, meta, log=lambda message: None)["step"] == 10


def test_state_that_hashes_right_but_does_not_load_is_skipped(tmp_path):
    meta = save_steps(tmp_path, [10, 20], trained_looking_model())
    newest = tmp_path / "state-000000020.pt"
    torch.save({"step": NotData()}, newest)
    meta["states"][0]["sha256"] = checkpoint.sha256_file(newest)
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
    checkpoint.write_json(path, {"a": 1})
    checkpoint.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert checkpoint.read_meta(path.parent) == {"a": 2}


def test_unreadable_meta_reads_as_no_checkpoint(tmp_path):
    (tmp_path / "meta.json").write_text('{"complete": tr')
    assert checkpoint.read_meta(tmp_path) is None
