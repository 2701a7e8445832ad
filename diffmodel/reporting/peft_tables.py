"""Full fine-tuning against PEFT, measured: each chain adaptation beside its PEFT twin.

Both twins start from the same parent chain, see the same data for the same epochs and are
scored on the same test images; they differ only in which tensors train (params peft_twins:
method and learning rate; model/peft.py). Stored
size is the weights file a consumer loads (a PEFT model's holds only its delta).
"""

from __future__ import annotations

from ..chain import MODELS, PEFT_TWINS
from .tables import _number, ratio

FINEDIFFUSION = {"speedup": 1.56, "stored_percent": 1.77}  # DiT-XL/2 on 10,000 classes, its abstract


def loss_at_seconds(history: list[dict], seconds: float) -> tuple[int, float] | None:
    """(epoch, validation loss) of the last epoch finished within `seconds` of training; None if none was."""
    finished = [row for row in history if row["train_seconds"] <= seconds + 1e-9]
    return (int(finished[-1]["epoch"]), finished[-1]["val_loss"]) if finished else None


def summarise_twins(full: str, twin: str, scores: dict, timings: dict, histories: dict) -> dict:
    f, p = timings[full], timings[twin]
    quality = "psnr"  # both twins colorize: PSNR over the whole image
    equal_time = min(f["total_seconds"], p["total_seconds"])
    at_time = {name: loss_at_seconds(histories.get(name, []), equal_time) for name in (full, twin)}
    return {
        "full": full,
        "peft": twin,
        "trainable_percent": p["trainable_percent"],
        "stored_bytes": {"full": f["weights_bytes"], "peft": p["weights_bytes"]},
        "stored_percent": round(100 * p["weights_bytes"] / f["weights_bytes"], 2),
        "seconds_per_epoch": {"full": f["seconds_per_epoch"], "peft": p["seconds_per_epoch"]},
        "speedup": ratio(f["seconds_per_epoch"], p["seconds_per_epoch"]),  # full's time per epoch / PEFT's
        "peak_memory_mb": {"full": f["peak_memory_mb"], "peft": p["peak_memory_mb"]},
        "training_state_mb": {"full": f["training_state_mb"], "peft": p["training_state_mb"]},
        "equal_epochs": {name: {"epochs": timings[name]["epochs"], "val_loss": timings[name]["final_val_loss"],
                                quality: scores[name].get(quality), "ssim": scores[name].get("ssim"),
                                "swd": scores[name].get("swd")} for name in (full, twin)},
        "equal_time": {"seconds": round(equal_time, 1),
                       **{name: None if found is None else {"epoch": found[0], "val_loss": found[1]}
                          for name, found in at_time.items()}},
    }


def peft_tables(scores: dict, timings: dict, histories: dict, paper_share: dict | None) -> tuple[str, dict]:
    """(markdown section of reports/tables.md, summary.json's "peft" entry)."""
    summary = {MODELS[twin].twin_of: summarise_twins(MODELS[twin].twin_of, twin, scores, timings, histories)
               for twin in PEFT_TWINS if twin in timings and MODELS[twin].twin_of in timings}
    methods = sorted({timings[row["peft"]]["method"] for row in summary.values()})
    lines = ["## Full fine-tuning vs PEFT: each adaptation beside its PEFT twin", "",
             f"Same parent, data, epochs and test images; the twins train with {', '.join(methods)} (params",
             "peft_twins, model/peft.py; every method side by side: reports/peft_study/). stored bytes: the",
             "weights file a consumer loads (PEFT: the delta on its parent). Peak memory:",
             "resident memory of the training process (CPU; allocated memory on a GPU), the largest of its sessions;",
             "training state: weights, EMA copies, gradients and Adam moments, counted from the tensors.", "",
             "| model | method | trainable % | stored bytes | s/epoch | peak memory MB | training state MB "
             "| epochs | val loss | PSNR | SSIM | SWD |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary.values():
        for name in (row["full"], row["peft"]):
            t, q = timings[name], row["equal_epochs"][name]
            lines.append(f"| {name} | {t['method']} | {_number(t['trainable_percent'])} | {t['weights_bytes']:,} "
                         f"| {_number(t['seconds_per_epoch'])} | {_number(t['peak_memory_mb'], 0)} "
                         f"| {_number(t['training_state_mb'], 3)} | {q['epochs']} | {_number(q['val_loss'], 4)} "
                         f"| {_number(q['psnr'])} | {_number(q['ssim'], 3)} | {_number(q['swd'], 1)} |")
    lines.append("")
    for full, row in summary.items():
        equal = row["equal_time"]
        at = {name: ("no epoch finished" if equal[name] is None else
                     f"val loss {equal[name]['val_loss']:.4f} (epoch {equal[name]['epoch']})") for name in (full, row["peft"])}
        lines.append(f"- **{full} vs {row['peft']}**: PEFT stores {row['stored_percent']:.2f} % of a full copy "
                     f"and trains {_number(row['speedup'])}x as fast per epoch (FineDiffusion: "
                     f"{FINEDIFFUSION['stored_percent']} % and {FINEDIFFUSION['speedup']}x). At equal training time "
                     f"({equal['seconds']} s): {full} {at[full]}, {row['peft']} {at[row['peft']]}.")
    if paper_share is not None:  # {method: model.peft.TrainableShare.as_dict()} of the paper-scale U-Net
        total = next(iter(paper_share.values()))["parameters"]
        each = ", ".join(f"{method} {share['trainable_parameters']:,} ({share['trainable_percent']:.2f} %)"
                         for method, share in paper_share.items())
        lines += ["", f"At the paper's scale (configs/paper.yaml, built here: {total / 1e6:.1f} M parameters) the "
                      f"methods would train: {each} - biases and norms grow with the width, weights with its square."]
    lines.append("")
    return "\n".join(lines), {"twins": summary, "paper_scale": paper_share}
