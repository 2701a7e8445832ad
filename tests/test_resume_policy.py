"""checkpoints/fingerprint.py: what a fingerprint covers, and the one line that says what changed."""

from __future__ import annotations

from records import record

from diffmodel.checkpoints.fingerprint import describe_change, fingerprint_parts
from diffmodel.config import TrainConfig
from diffmodel.training.resume import ResumePolicy, stale_directories

JOB = {"task": "inpainting", "domain": "faces", "architecture": {}, "diffusion": {}}


def parts(schedule=TrainConfig(), subsets=((0, 8), (8, 16)), data="abc", parent=None):
    return fingerprint_parts(JOB, schedule, data, list(subsets), parent, world_size=1)


def test_the_partition_counts_for_incremental_learning_only():
    assert parts(subsets=[(0, 16)]) != parts()
    batch = TrainConfig(subset_epochs=0)
    assert parts(batch, subsets=[(0, 16)]) == parts(batch)


def test_epochs_and_checkpoint_timing_do_not_count():
    assert parts(TrainConfig(epochs=3, session_epochs=1, checkpoint_every_minutes=1.0)) == parts()
    assert parts(TrainConfig(lr=0.5)) != parts()


def test_the_code_part_names_each_training_file_but_the_config_parser():
    code = parts()["code"]
    assert "diffmodel/training/loop.py" in code and "diffmodel/model/diffusion.py" in code
    assert all(len(digest) == 16 for digest in code.values())
    assert not [path for path in code if path.startswith("diffmodel/config/")]  # its parsed values are fingerprinted instead


def test_the_change_is_named():
    old = parts()
    assert describe_change(old, {**old, "code": {**old["code"], "diffmodel/model/unet.py": "0" * 16}}) == \
        "training code changed (diffmodel/model/unet.py)"
    assert describe_change({k: v for k, v in old.items() if k != "code"}, old) == \
        "trained by an older version of the code (no code hash)"
    assert describe_change(old, parts(TrainConfig(lr=0.5, dropout=0.2))) == "training params changed (dropout, lr)"
    assert describe_change(old, parts(subsets=[(0, 16)])) == "data subsets changed (data.num_subsets)"
    assert describe_change(old, parts(data="def", parent="123")) == "data changed; parent weights changed"


def test_every_set_aside_state_is_kept_under_its_own_name(tmp_path):
    """Two changes in a row (even within one second) set two old states aside; neither replaces the other."""
    out = tmp_path / "models/base"
    messages = []
    for old in ("aaaaaaaa11111111", "bbbbbbbb22222222", "bbbbbbbb22222222"):
        record(fingerprint=old).write(out)
        policy = ResumePolicy("base", out, TrainConfig(), "cccccccc33333333", parts(), lambda: record(), messages.append)
        meta, state = policy.find()
        assert state is None and meta.fingerprint == "f" * 16  # a fresh record: nothing of the old one resumed
        assert not out.exists()
    kept = stale_directories(out)
    assert len(kept) == 3 and all((aside / "meta.json").exists() for aside in kept)
    assert {aside.name.split("-")[2] for aside in kept} == {"aaaaaaaa", "bbbbbbbb"}
    assert all(any(str(aside) in message and f"rm -r {aside}" in message for message in messages) for aside in kept)


def test_a_change_of_the_number_of_processes_is_named():
    one = fingerprint_parts({}, TrainConfig(), "data", [], None, world_size=1)
    two = fingerprint_parts({}, TrainConfig(), "data", [], None, world_size=2)
    assert describe_change(one, two) == "world_size changed"
