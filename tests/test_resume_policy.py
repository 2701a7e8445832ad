"""resume.py: what a fingerprint covers, and the one line that says what changed."""

from __future__ import annotations

from diffmodel.config import TrainConfig
from diffmodel.resume import describe_change, fingerprint_parts

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
    assert "diffmodel/train.py" in code and "diffmodel/diffusion.py" in code
    assert all(len(digest) == 16 for digest in code.values())
    assert "diffmodel/config.py" not in code  # its parsed values are fingerprinted instead


def test_the_change_is_named():
    old = parts()
    assert describe_change(old, {**old, "code": {**old["code"], "diffmodel/unet.py": "0" * 16}}) == \
        "training code changed (diffmodel/unet.py)"
    assert describe_change({k: v for k, v in old.items() if k != "code"}, old) == \
        "trained by an older version of the code (no code hash)"
    assert describe_change(old, parts(TrainConfig(lr=0.5, dropout=0.2))) == "training params changed (dropout, lr)"
    assert describe_change(old, parts(subsets=[(0, 16)])) == "data subsets changed (data.num_subsets)"
    assert describe_change(old, parts(data="def", parent="123")) == "data changed; parent weights changed"
