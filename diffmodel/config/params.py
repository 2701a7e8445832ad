"""Every section of params.yaml as a typed dataclass, with the checks of its values.

The defaults here are the built-in default run, exactly as params.yaml spells it out (a test
checks they agree), so what tests and benchmarks build from Params() is what the pipeline runs.
A mistake (unknown key, wrong type, impossible value) raises ConfigError with a one-line
message that names the key, before any work starts; loading.py reads the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from ..errors import UserError


class ConfigError(UserError):
    """A one-line, user-facing problem with params.yaml."""


@dataclass(frozen=True)
class DomainConfig:
    """Where one domain's images come from and how many go to each split."""

    source: Literal["synthetic", "folder"] = "synthetic"
    root: str | None = None
    classes: tuple[str, ...] = ()  # fine classes: subfolders of root (folder), or built-in ones (synthetic)
    # superclass -> its fine classes (FineDiffusion's tiers); without it the superclass is the domain
    superclasses: dict[str, tuple[str, ...]] | None = None
    train: int = 1024
    val: int = 64
    test: int = 64
    # a section that sets `classes` but not `superclasses` has none: the default grouping is of the default classes
    RESETS: ClassVar[dict[str, tuple[str, ...]]] = {"classes": ("superclasses",)}

    def validate(self, key: str) -> None:
        if self.source == "folder" and not self.root:
            raise ConfigError(f"{key}.root: required when {key}.source is 'folder'")
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"{key}.classes: a class is listed twice")
        if self.superclasses is not None:
            grouped = [c for members in self.superclasses.values() for c in members]
            for name in grouped:
                if name not in self.classes:
                    raise ConfigError(f"{key}.superclasses: {name!r} is not one of {key}.classes ({', '.join(self.classes)})")
                if grouped.count(name) > 1:
                    raise ConfigError(f"{key}.superclasses: {name!r} is in more than one superclass")
            ungrouped = [c for c in self.classes if c not in grouped]
            if ungrouped:
                raise ConfigError(f"{key}.superclasses: {', '.join(map(repr, ungrouped))} in no superclass; "
                                  f"every class of {key}.classes needs one")
        for split in ("train", "val", "test"):
            if getattr(self, split) < 1:
                raise ConfigError(f"{key}.{split}: must be at least 1, got {getattr(self, split)}")


@dataclass(frozen=True)
class DataConfig:
    image_size: int = 32
    seed: int = 0
    num_subsets: int = 2  # Algorithm 2's N: the training set is split into N equal subsets
    faces: DomainConfig = DomainConfig()
    landscapes: DomainConfig = DomainConfig(
        classes=("alpine", "red_rock", "summer_forest", "autumn_forest"),
        superclasses={"mountain": ("alpine", "red_rock"), "forest": ("summer_forest", "autumn_forest")},
    )

    def validate(self, key: str) -> None:
        if self.image_size < 8:
            raise ConfigError(f"{key}.image_size: must be at least 8, got {self.image_size}")
        if self.num_subsets < 1:
            raise ConfigError(f"{key}.num_subsets: must be at least 1, got {self.num_subsets}")
        for name in ("faces", "landscapes"):
            domain = getattr(self, name)
            domain.validate(f"{key}.{name}")
            if domain.train < self.num_subsets:
                raise ConfigError(
                    f"{key}.{name}.train: {domain.train} images cannot fill "
                    f"{key}.num_subsets={self.num_subsets} subsets"
                )

    def domain(self, name: str) -> DomainConfig:
        return getattr(self, name)


@dataclass(frozen=True)
class ModelConfig:
    """U-Net shape. Everything here changes the weights' shapes; dropout lives in the schedule."""

    channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2, 2)
    blocks_per_level: int = 1
    attention_resolutions: tuple[int, ...] = (8,)
    head_channels: int = 16
    groups: int = 8

    def validate(self, key: str) -> None:
        if not self.channel_mults:
            raise ConfigError(f"{key}.channel_mults: needs at least one level")
        widths = [self.channels * m for m in self.channel_mults]
        for width in [self.channels, *widths]:
            if width % self.groups:
                raise ConfigError(
                    f"{key}.groups: {self.groups} does not divide channel width {width}"
                )
            if width % self.head_channels and width >= self.head_channels:
                raise ConfigError(
                    f"{key}.head_channels: {self.head_channels} does not divide channel width {width}"
                )
        if self.blocks_per_level < 1:
            raise ConfigError(f"{key}.blocks_per_level: must be at least 1")

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.channel_mults) - 1)


@dataclass(frozen=True)
class DiffusionConfig:
    """Palette's linear beta schedule. Paper scale: steps 1200 (section 3.1)."""

    steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    loss: Literal["l2", "l1"] = "l2"
    prediction: Literal["eps", "v"] = "v"  # what the network predicts; Palette (and the paper's scale): eps
    # how the loss weighs noise levels: uniform (Palette), or min_snr (Hang et al. 2023): the weight
    # of a level of signal-to-noise ratio SNR is min(SNR, snr_gamma) relative to predicting y0
    weighting: Literal["uniform", "min_snr"] = "uniform"
    snr_gamma: float = 5.0

    def validate(self, key: str) -> None:
        if self.steps < 2:
            raise ConfigError(f"{key}.steps: must be at least 2, got {self.steps}")
        if not self.snr_gamma > 0:
            raise ConfigError(f"{key}.snr_gamma: must be positive, got {self.snr_gamma}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ConfigError(
                f"{key}.beta_start/beta_end: need 0 < beta_start < beta_end < 1, "
                f"got {self.beta_start}, {self.beta_end}"
            )


# What a recorded key meant before it existed. meta.json records the U-Net shape and the diffusion
# a model was trained with; a model saved before a key was added was trained as the code then
# behaved, not with today's default. loading.parse_recorded fills a missing key from here and
# refuses one that is not here: add the old behaviour whenever `model` or `diffusion` gains a key.
BEFORE_KEY_EXISTED: dict[str, object] = {
    "diffusion.prediction": "eps",  # added in aec6c40; every model before it predicted the noise
    "diffusion.weighting": "uniform",  # loss weighting over noise levels: uniform until it was added
    "diffusion.snr_gamma": 5.0,  # read only by min_snr, which did not exist before it
}


@dataclass(frozen=True)
class TrainConfig:
    """One training stage's schedule (the `train` section for the base, `adapt` for adaptations)."""

    epochs: int = 50
    subset_epochs: int = 3  # Algorithm 2's E; 0 = batch learning (all data every epoch)
    batch_size: int = 16
    accumulate: int = 1
    lr: float = 1e-3
    warmup_steps: int = 50
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    dropout: float = 0.0
    session_epochs: int = 4  # epochs per resumable session (paper: 5, later 15)
    checkpoint_every_epochs: int = 1
    checkpoint_every_minutes: float = 10.0
    seed: int = 0
    # full: every tensor trains; the others train a part (diffmodel/model/peft.py) and the model
    # directory stores only that part: finediffusion (biases, norms, class embedder),
    # finediffusion_time (+ the noise-level MLP), finediffusion_input (+ the input convolution),
    # lora (finediffusion_time's + a rank lora_rank update of every other weight, scale lora_alpha / lora_rank)
    method: Literal["full", "finediffusion", "finediffusion_time", "finediffusion_input", "lora"] = "full"
    lora_rank: int = 4
    lora_alpha: float = 4.0
    # a class-conditional model (a domain with several classes) learns "no label" too: the fine
    # label is dropped (superclass kept) with label_dropout, both with label_dropout_all
    label_dropout: float = 0.1
    label_dropout_all: float = 0.1
    # the training step's forward and loss: fp32, bf16 autocast, or auto - bf16 where the hardware
    # computes it natively and it pays (diffmodel/precision.py); the one in use is in meta.json
    precision: Literal["auto", "fp32", "bf16"] = "auto"

    def validate(self, key: str) -> None:
        for name in ("label_dropout", "label_dropout_all"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{key}.{name}: must be in [0, 1], got {getattr(self, name)}")
        if self.label_dropout + self.label_dropout_all > 1:
            raise ConfigError(f"{key}.label_dropout + {key}.label_dropout_all: must be at most 1")
        positive = ("epochs", "batch_size", "accumulate", "session_epochs", "checkpoint_every_epochs", "lora_rank")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}: must be at least 1, got {getattr(self, name)}")
        if self.subset_epochs < 0:
            raise ConfigError(f"{key}.subset_epochs: must be 0 (batch learning) or more")
        for name in ("lr", "lora_alpha"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{key}.{name}: must be positive, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"{key}.ema_decay: must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{key}.dropout: must be in [0, 1), got {self.dropout}")
        if self.warmup_steps < 0 or self.grad_clip < 0:
            raise ConfigError(f"{key}: warmup_steps and grad_clip must not be negative")
        if self.checkpoint_every_minutes <= 0:
            raise ConfigError(f"{key}.checkpoint_every_minutes: must be positive")


@dataclass(frozen=True)
class BaselinesConfig:
    """How long the baselines train: until their validation loss reaches their chain
    counterpart's final one (equal quality), or for at most `cap_factor` times the counterpart's
    epochs - then the reports give "not reached", a lower bound, never a made-up ratio."""

    cap_factor: float = 1.0

    def validate(self, key: str) -> None:
        if not self.cap_factor >= 1:
            raise ConfigError(f"{key}.cap_factor: must be at least 1, got {self.cap_factor}")


@dataclass(frozen=True)
class PeftTwinsConfig:
    """The PEFT twins (peft_faces, peft_landscapes): each chain adaptation again (params `adapt`)
    with this parameter-efficient method and its own learning rate (the study in study/ chose them)."""

    method: Literal["finediffusion", "finediffusion_time", "finediffusion_input", "lora"] = "lora"
    lr: float = 0.016

    def validate(self, key: str) -> None:
        if not self.lr > 0:
            raise ConfigError(f"{key}.lr: must be positive, got {self.lr}")


@dataclass(frozen=True)
class SamplingSteps:
    """DDIM steps per task (DDPM ignores them: it walks the whole schedule). Stage `samplers` measures
    the choice: colorization loses nothing below 50 steps, inpainting's SWD rises below 50."""

    inpainting: int = 50
    colorization: int = 20

    def for_task(self, task: str) -> int:
        return getattr(self, task)

    def validate(self, key: str) -> None:
        for task in dataclasses.fields(self):
            if self.for_task(task.name) < 1:
                raise ConfigError(f"{key}.{task.name}: must be at least 1, got {self.for_task(task.name)}")


@dataclass(frozen=True)
class EvaluateConfig:
    sampler: Literal["ddim", "ddpm"] = "ddim"
    steps: SamplingSteps = SamplingSteps()
    eta: float = 0.0
    count: int = 64  # test images per model
    batch_size: int = 64
    seed: int = 1234
    inception_weights: str | None = None
    # class-conditional models: none = plain conditional sampling; cfg = classifier-free guidance
    # against "no label"; superclass = FineDiffusion's guidance against the image's superclass
    guidance: Literal["none", "cfg", "superclass"] = "superclass"
    guidance_scale: float = 1.5

    def validate(self, key: str) -> None:
        self.steps.validate(f"{key}.steps")
        if self.count < 1 or self.batch_size < 1:
            raise ConfigError(f"{key}: count and batch_size must be at least 1")
        if self.guidance_scale < 0:
            raise ConfigError(f"{key}.guidance_scale: must not be negative, got {self.guidance_scale}")
        if self.eta < 0:
            raise ConfigError(f"{key}.eta: must not be negative, got {self.eta}")

    def sampler_name(self, task: str) -> str:
        """How a task's outputs were sampled, as the reports name it: ddim-20, ddpm."""
        return f"ddim-{self.steps.for_task(task)}" if self.sampler == "ddim" else "ddpm"


@dataclass(frozen=True)
class SamplersConfig:
    """The sampler comparison (stage `samplers`): DDIM with each number of steps on the first `count`
    test images of each of `models`, and DDPM over every step of the schedule for `ddpm_models` -
    seconds per image against PSNR, SSIM and SWD, to choose evaluate.sampler and evaluate.steps."""

    models: tuple[str, ...] = ("base", "colorize_faces")
    ddim_steps: tuple[int, ...] = (10, 20, 50, 100)
    ddpm_models: tuple[str, ...] = ("base",)
    count: int = 8

    def validate(self, key: str) -> None:
        if self.count < 2 or any(steps < 1 for steps in self.ddim_steps):
            raise ConfigError(f"{key}: count must be at least 2 and every ddim_steps at least 1")
        for name in self.ddpm_models:
            if name not in self.models:
                raise ConfigError(f"{key}.ddpm_models: {name!r} is not one of {key}.models ({', '.join(self.models)})")


@dataclass(frozen=True)
class GuidanceConfig:
    """The guidance comparison (stage `guidance`): `model` colours its first `count` test images
    without a label, with the superclass, with the class, under CFG and superclass guidance at
    each of `scales`, and as the wrong class on purpose (reports/tables.md)."""

    model: str = "colorize_landscapes"
    scales: tuple[float, ...] = (1.5,)
    count: int = 24

    def validate(self, key: str) -> None:
        if self.count < 1 or not self.scales or any(s < 0 for s in self.scales):
            raise ConfigError(f"{key}: count must be at least 1 and scales non-empty and non-negative")
        if len(set(self.scales)) != len(self.scales):
            raise ConfigError(f"{key}.scales: a scale is listed twice")


@dataclass(frozen=True)
class Params:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    train: TrainConfig = TrainConfig()
    adapt: TrainConfig = TrainConfig(epochs=16, warmup_steps=20, lr=4e-3)
    baselines: BaselinesConfig = BaselinesConfig()
    peft_twins: PeftTwinsConfig = PeftTwinsConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    samplers: SamplersConfig = SamplersConfig()
    guidance: GuidanceConfig = GuidanceConfig()

    def validate(self) -> None:
        for section in dataclasses.fields(self):
            getattr(self, section.name).validate(section.name)
        if self.train.method != "full":
            raise ConfigError("train.method: must be full: the base trains from scratch, and a parameter-efficient "
                              "method only fine-tunes a trained parent (set adapt.method instead)")
        size, down = self.data.image_size, self.model.downsampling
        if size % down:
            raise ConfigError(
                f"data.image_size: {size} is not divisible by the U-Net's downsampling factor "
                f"{down} (2 ** (len(model.channel_mults) - 1))"
            )
        resolutions = {size // 2**level for level in range(len(self.model.channel_mults))}
        for res in self.model.attention_resolutions:
            if res not in resolutions:
                raise ConfigError(
                    f"model.attention_resolutions: {res} is not a U-Net resolution "
                    f"for image_size {size} (choose from {sorted(resolutions, reverse=True)})"
                )
