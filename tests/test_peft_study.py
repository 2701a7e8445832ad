"""The PEFT study's table (stages/peft_study.py): gain shares, chosen learning rates, equal-time rows."""

from stages.peft_study import markdown, run_key, summarise


def study_run(method, lr, psnr, val_loss, budget="equal_steps", seed=0, steps=1024, rank=None):
    return {"transfer": "faces", "method": method, "lr": lr, "seed": seed, "lora_rank": rank, "budget": budget,
            "scores": {"psnr": psnr, "swd": 30.0, "input_psnr": 20.0}, "steps": steps, "seconds_per_step": 0.1,
            "timings": {"final_val_loss": val_loss, "peak_memory_mb": 800},
            "trainable": {"trainable_percent": 100.0 if method == "full" else 18.0},
            "weights_bytes": 1000 if method == "full" else 200}


def test_equal_time_rows_are_scored_against_full_at_equal_steps_and_never_choose_a_learning_rate():
    runs = [study_run("full", 0.004, 25.0, 0.02), study_run("full", 0.004, 24.0, 0.02, seed=1),
            study_run("lora", 0.004, 22.0, 0.030, rank=4), study_run("lora", 0.016, 21.0, 0.035, rank=4),
            # the longest-trained run has the lowest loss, but an equal-time run is not a learning-rate trial
            study_run("lora", 0.016, 22.5, 0.010, budget="equal_time", steps=960, rank=4)]
    faces = summarise(runs)["faces"]
    rows = {(row["method"], row["lr"], row["budget"]): row for row in faces["rows"]}
    # full: mean of its seeds 24.5 over the input's 20 -> a gain of 4.5 dB
    assert rows["full", 0.004, "equal_steps"]["psnr"] == 24.5
    assert rows["lora", 0.004, "equal_steps"]["gain_share"] == round(2.0 / 4.5, 3)
    assert rows["lora", 0.016, "equal_time"]["gain_share"] == round(2.5 / 4.5, 3)
    assert rows["lora", 0.016, "equal_time"]["stored_percent"] == 20.0
    assert faces["best_lr"] == {"full": 0.004, "lora r4": 0.004}
    assert [row["budget"] for row in faces["rows"]][-1] == "equal_time"  # listed after every equal-step row

    table = markdown({"faces": faces}).splitlines()
    assert any(line.startswith("| lora r4, equal time | 0.016 | 1 | 960 | 22.50 |") for line in table)
    assert any(line.startswith("| lora r4 * | 0.004 | 1 | 1024 | 22.00 |") for line in table)


def test_runs_written_before_equal_time_existed_count_as_equal_steps():
    old = study_run("full", 0.004, 25.0, 0.02)
    del old["budget"]
    assert summarise([old])["faces"]["rows"][0]["budget"] == "equal_steps"


def test_an_equal_time_run_has_its_own_key():
    assert run_key("faces", "lora", 0.016, 0) == "faces-lora-lr0.016-seed0"
    assert run_key("faces", "lora", 0.016, 0, rank=1, epochs=15) == "faces-lora-r1-lr0.016-seed0-epochs15"
