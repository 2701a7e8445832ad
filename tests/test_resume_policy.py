"""checkpoints/fingerprint.py: what a fingerprint covers, and the one line that says what changed."""

from __future__ import annotations

import time
from pathlib import Path

from records import record

from diffmodel.checkpoints.fingerprint import describe_change, fingerprint, fingerprint_parts
from diffmodel.checkpoints.meta import EpochRecord, StateRecord
from diffmodel.config import TrainConfig, as_plain_dict
from diffmodel.training import resume
from diffmodel.training.resume import ResumePolicy, epochs_begun, rewound, stale_directories

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
    fewer = {path: digest for path, digest in old["code"].items() if path != "diffmodel/model/tasks.py"}
    new_file = {**fewer, "diffmodel/model/unet.py": "0" * 16, "diffmodel/new.py": "1" * 16}
    assert describe_change(old, {**old, "code": new_file}) == \
        "training code changed (diffmodel/model/tasks.py, diffmodel/model/unet.py, diffmodel/new.py)"  # gone, changed, new
    assert describe_change({k: v for k, v in old.items() if k != "code"}, old) == \
        "trained by an older version of the code (no code hash)"
    assert describe_change(old, parts(TrainConfig(lr=0.5, dropout=0.2))) == "training params changed (dropout, lr)"
    older_schedule = {k: v for k, v in old["schedule"].items() if k != "ema_decay"}  # a key this code added since
    assert describe_change({**old, "schedule": older_schedule}, old) == "training params changed (ema_decay)"
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


def test_set_aside_names_are_the_model_the_utc_time_and_the_old_fingerprint_then_a_counter(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "gmtime", lambda: time.struct_time((2026, 12, 2, 10, 15, 0, 2, 336, 0)))
    out = tmp_path / "models/base"
    for old in ("aaaaaaaa11111111", "aaaaaaaa11111111", "aaaaaaaa11111111", None):
        if old is None:
            out.mkdir(parents=True)
            (out / "meta.json").write_text("not json")  # unreadable: no fingerprint to name
        else:
            record(fingerprint=old).write(out)
        ResumePolicy("base", out, TrainConfig(), "c" * 16, parts(), lambda: record(), lambda m: None).find()
    assert [p.name for p in stale_directories(out)] == [
        "base-20261202T101500Z-aaaaaaaa", "base-20261202T101500Z-aaaaaaaa-2", "base-20261202T101500Z-aaaaaaaa-3",
        "base-20261202T101500Z-unknown"]


def row(epoch: int, val_loss: float = 0.5) -> EpochRecord:
    return EpochRecord(epoch=epoch, subset=0, train_loss=1.0, val_loss=val_loss, seconds=1.0, images=8)


def policy(epochs: int, target: float | None = None) -> ResumePolicy:
    return ResumePolicy("base", Path("unused"), TrainConfig(epochs=epochs, lr=0.5), "f" * 16, {}, record, print, target)


def test_a_run_is_finished_when_complete_at_the_epochs_asked_or_past_its_target():
    done = record(complete=True, epoch=3, history=[row(1), row(2), row(3)])
    assert policy(3).finished(done)
    assert not policy(3).finished(done.replace(complete=False))  # stopped at epoch 3 of more
    assert not policy(5).finished(done) and not policy(2).finished(done)
    assert policy(5, target=0.5).finished(done)  # reached its target within the cap
    assert not policy(5, target=0.4).finished(done)
    assert not policy(2, target=0.5).finished(done)  # more epochs than the cap now allows


def test_continuing_takes_the_epochs_and_schedule_asked_now_and_drops_only_newer_states():
    states = [StateRecord(f"state-{s}.pt", "0" * 64, s // 10, s) for s in (30, 20, 10)]
    early = record(epoch=1, step=20, history=[row(1)])
    late = record(complete=True, epoch=3, step=30, epochs=3, history=[row(1), row(2), row(3)], states=states)
    continued = policy(5).continued(late, {"step": 20, "progress": early.progress_json()})
    assert (continued.complete, continued.epochs, continued.schedule) == (False, 5, as_plain_dict(TrainConfig(epochs=5, lr=0.5)))
    assert [h.epoch for h in continued.history] == [1] and continued.epoch == 1  # as when step 20 was saved
    assert [s.step for s in continued.states] == [20, 10]  # the state resumed from stays, the newer one goes
    assert [s.step for s in rewound(late, {"step": 30}).states] == [30, 20, 10] and rewound(late, {"step": 30}).history == late.history


def test_an_epoch_in_progress_counts_as_begun():
    assert epochs_begun(record(epoch=3, batch_in_epoch=0)) == 3
    assert epochs_begun(record(epoch=3, batch_in_epoch=5)) == 4


def test_a_fingerprint_is_16_hex_digits_that_do_not_depend_on_the_order_keys_were_written_in():
    """meta.json written by one Python and read by another (or parts built in another order) must match."""
    one = {"schedule": {"lr": 0.5, "batch_size": 8}, "data": "abc"}
    other = {"data": "abc", "schedule": {"batch_size": 8, "lr": 0.5}}
    assert fingerprint(one) == fingerprint(other) != fingerprint({**one, "data": "abd"})
    assert len(fingerprint(one)) == 16 and int(fingerprint(one), 16) >= 0


def test_an_unreadable_record_is_set_aside_with_the_reason_and_how_to_delete_it(tmp_path):
    out = tmp_path / "models/base"
    out.mkdir(parents=True)
    (out / "meta.json").write_text("not json")
    messages = []
    ResumePolicy("base", out, TrainConfig(), "c" * 16, parts(), lambda: record(), messages.append).find()
    [aside] = stale_directories(out)
    assert messages == [f"base: no readable meta.json; starting fresh, old state moved to {aside} (`rm -r {aside}` deletes it)"]


def test_a_run_killed_in_its_last_epoch_continues_and_one_past_the_epochs_asked_is_set_aside(tmp_path, monkeypatch):
    """Epochs begun (finished ones plus one in progress) may reach the epochs asked, not pass them."""
    state = {"step": 11}
    monkeypatch.setattr(resume.store, "load_state", lambda directory, meta, log=print: state)
    out = tmp_path / "models/base"
    messages = []
    for epoch, kept in ((2, True), (3, False)):  # both mid-epoch: 3 and 4 epochs begun, 3 asked
        record(epoch=epoch, step=11, batch_in_epoch=3, history=[row(e) for e in range(1, epoch + 1)]).write(out)
        meta, resumed = ResumePolicy("base", out, TrainConfig(epochs=3), "f" * 16, {}, lambda: record(step=0),
                                     messages.append).find()
        assert (resumed is state, meta.step == 11, out.exists()) == (kept, kept, kept)
    assert messages[-1].startswith("base: it was trained for more than the 3 epochs now asked; starting fresh")


def test_parts_that_agree_though_the_fingerprints_differ_still_give_a_reason():
    assert describe_change(parts(), parts()) == "settings changed"


def test_a_missing_resume_state_is_reported_through_the_jobs_log_then_the_run_set_aside(tmp_path):
    out = tmp_path / "models/base"
    record(epoch=1, step=5, batch_in_epoch=2, states=[StateRecord("state-5.pt", "0" * 64, 1, 5)]).write(out)
    messages = []
    meta, state = ResumePolicy("base", out, TrainConfig(epochs=3), "f" * 16, {}, lambda: record(step=0), messages.append).find()
    assert state is None and meta.step == 0
    assert messages[0] == f"resume state {out / 'state-5.pt'} is missing; trying an older one"
    assert messages[-1].startswith("base: no intact resume state; starting fresh, old state moved to ")
