"""The guidance comparison's section of reports/tables.md, from reports/guidance/scores.json
(stage guidance, diffmodel/guidance_study.py)."""

from __future__ import annotations


def guidance_table(result: dict) -> str:
    """The markdown section of reports/tables.md."""
    default = result["default_guidance"]
    lines = ["## Class-aware colorization (FineDiffusion): labels and guidance", "",
             f"{result['model']} colours its first {result['images']} test images ({result['sampler']}, same seeds) "
             "under each setting; label given: none, the superclass alone, the image's class, or the other class of its",
             "superclass on purpose (wrong). Class accuracy: how often a colour-only nearest-class-mean classifier (chroma",
             "histograms, diffmodel/class_fidelity.py) puts the output in the image's true class - in the class asked for,",
             "for the wrong-class rows; colour distance: L1 between the output's chroma histogram and that class's mean",
             "(lower is closer). PSNR, SSIM and SWD compare with the true image. The classifier's own accuracy on the real",
             "images and on the grayscale input bound the column.",
             f"evaluate.guidance is {default['kind']}" + (f" at scale {default['scale']:g}" if default["kind"] != "none" else "")
             + " (the evaluate stages and the per-class grid use it).", "",
             "| setting | label given | PSNR | SSIM | SWD | class accuracy | colour distance | s/image |",
             "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['setting']} | {row['class_given']} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['swd']:.1f} "
                     f"| {row['class_accuracy']:.3f} | {row['colour_distance']:.3f} | {row['seconds_per_image']:.3f} |")
    for name, ref in result["reference"].items():
        lines.append(f"| {name} (no model) | | | | | {ref['class_accuracy']:.3f} | {ref['colour_distance']:.3f} | |")
    rows = {row["setting"]: row for row in result["rows"]}
    best = {kind: max((r for r in result["rows"] if r["guidance"] == kind and r["class_given"] == "true"),
                      key=lambda r: r["class_accuracy"], default=None) for kind in ("cfg", "superclass")}
    lines.append("")
    if best["cfg"] and best["superclass"]:
        c, s = best["cfg"], best["superclass"]
        verdict = ("beats" if s["class_accuracy"] > c["class_accuracy"] else
                   "ties with" if s["class_accuracy"] == c["class_accuracy"] else "does not beat")
        lines.append(f"- Best class accuracy: superclass guidance {s['class_accuracy']:.3f} (scale {s['scale']:g}, PSNR "
                     f"{s['psnr']:.2f}) {verdict} CFG {c['class_accuracy']:.3f} (scale {c['scale']:g}, PSNR {c['psnr']:.2f}); "
                     f"plain conditional {rows['class (conditional)']['class_accuracy']:.3f}, no label "
                     f"{rows['no label']['class_accuracy']:.3f}.")
    wrong = rows.get("wrong class, conditional")
    if wrong:
        lines.append(f"- Asked for the other class of the same superclass, the output has that class's colours in "
                     f"{wrong['class_accuracy']:.3f} of the images (its true class's in {wrong['true_class_accuracy']:.3f}), "
                     f"and PSNR drops to {wrong['psnr']:.2f}: the label, not the gray, decides these colours.")
    lines += ["", "![one grayscale input coloured as each class](guidance/classes.png)", ""]
    return "\n".join(lines)
