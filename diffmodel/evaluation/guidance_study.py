"""Does the class label help colorization, and which guidance uses it best (FineDiffusion)?

One class-conditional model colours the same test images, with the same seeds, under each
setting: no label, the superclass alone, the class (plain conditional sampling),
classifier-free guidance and superclass-conditioned guidance at several scales, and the
wrong class on purpose (the other class of the image's own superclass, which the grayscale
input cannot rule out). Each is scored against the true images (PSNR, SSIM, SWD) and by
class fidelity (class_fidelity.py): do its colours say the image's true class - or, for the
wrong-class settings, the class asked for?
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..classes import NO_LABEL
from ..config import EvaluateConfig, GuidanceConfig
from ..data.prepared import PreparedDomain
from ..data.tensors import to_tensor
from ..model.diffusion import Guidance
from ..model.inference import LoadedModel, restore
from ..model.tasks import grayscale
from .class_fidelity import ColourClassifier
from .evaluate import evaluate_model


@dataclass(frozen=True)
class Setting:
    name: str
    asked: str  # the fine class given: "true" (the image's), "wrong" (the other of its superclass) or "none"
    superclass: bool  # whether the superclass is given
    guidance: Guidance


def settings(cfg: GuidanceConfig, default: Guidance) -> list[Setting]:
    plain = Guidance()
    rows = [Setting("no label", "none", False, plain), Setting("superclass only", "none", True, plain),
            Setting("class (conditional)", "true", True, plain)]
    rows += [Setting(f"{kind} guidance {scale:g}", "true", True, Guidance(kind, scale))
             for kind in ("cfg", "superclass") for scale in cfg.scales]
    rows += [Setting("wrong class, conditional", "wrong", True, plain)]
    if default.kind != "none":
        rows += [Setting(f"wrong class, {default.kind} guidance {default.scale:g}", "wrong", True, default)]
    return rows


def fit_classifier(data: PreparedDomain, batch: int = 256) -> ColourClassifier:
    """The colours of each class, from the domain's real training images."""
    batches = ((to_tensor(data.train[s : s + batch]), data.labels["train"][s : s + batch])
               for s in range(0, len(data.train), batch))
    return ColourClassifier.fit(batches, len(data.scheme.classes))


def study(model: LoadedModel, data: PreparedDomain, evaluate: EvaluateConfig, cfg: GuidanceConfig,
          progress: bool = True) -> dict:
    """Every setting's scores, and the classifier's own accuracy on real and grayscale images."""
    scheme = model.classes
    count = min(cfg.count, len(data.test))
    true = np.asarray(data.labels["test"][:count], np.int64)
    labels = {"true": true, "wrong": scheme.same_superclass_other(true), "none": np.full(count, NO_LABEL)}
    classifier = fit_classifier(data)
    run_cfg = dataclasses.replace(evaluate, count=count, inception_weights=None)
    rows = []
    for setting in settings(cfg, Guidance(evaluate.guidance, evaluate.guidance_scale)):
        superclass = scheme.superclass_labels(true) if setting.superclass else np.full(count, NO_LABEL)
        result = evaluate_model(model, data, run_cfg, None, "not computed in the guidance comparison", progress=progress,
                                desc=f"guidance: {setting.name}", fine=labels[setting.asked], superclass=superclass,
                                guidance=setting.guidance)
        target = labels["wrong"] if setting.asked == "wrong" else true  # the class its colours should say
        scores = result.metrics
        fidelity = classifier.fidelity(result.output, target)
        rows.append({"setting": setting.name, "class_given": setting.asked if setting.asked != "none" else
                     ("superclass" if setting.superclass else "none"), "guidance": setting.guidance.kind,
                     "scale": setting.guidance.scale, "psnr": scores["psnr"], "ssim": scores["ssim"], "swd": scores["swd"],
                     "class_accuracy": fidelity["class_accuracy"], "colour_distance": fidelity["colour_distance"],
                     "true_class_accuracy": round(float((fidelity["predicted"] == true).mean()), 4),
                     "seconds_per_image": scores["sampling_seconds_per_image"]})
    real = to_tensor(data.test[:count])
    gray = grayscale(real)
    reference = {name: {k: v for k, v in classifier.fidelity(images, true).items() if k != "predicted"}
                 for name, images in (("real images", real), ("grayscale input", gray))}
    return {"model": model.meta.name if model.meta else None, "images": count, "classes": scheme.as_dict(),
            "default_guidance": {"kind": evaluate.guidance, "scale": evaluate.guidance_scale},
            "sampler": evaluate.sampler_name(model.task.name),
            "reference": reference,
            "rows": rows}


def class_grid(model: LoadedModel, data: PreparedDomain, evaluate: EvaluateConfig, per_superclass: int = 2) -> dict:
    """Columns for report.sample_grid: a few test images (from every superclass), their grayscale
    input, and the output for each class asked, under the default guidance."""
    scheme = model.classes
    test_labels = np.asarray(data.labels["test"])
    supers = scheme.superclass_labels(test_labels)
    picks = np.concatenate([np.flatnonzero(supers == s)[:per_superclass] for s in range(len(scheme.superclasses))])
    clean = to_tensor(data.test[np.sort(picks)])
    guidance = Guidance(evaluate.guidance, evaluate.guidance_scale)
    columns = {}
    for k, name in enumerate(scheme.classes):
        result = restore(model, clean, evaluate.seed, evaluate.sampler, evaluate.steps.for_task(model.task.name), evaluate.eta,
                         fine=np.full(len(clean), k), guidance=guidance)
        if not columns:
            columns = {"ground truth": result.target, "grayscale input": result.condition}
        columns[f"as {name}"] = result.output
    return columns
