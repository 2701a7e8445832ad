"""Typed configuration: params.yaml's sections (params.py), read and validated in one place (loading.py)."""

from .loading import as_plain_dict, load_params, parse, parse_recorded
from .params import (
    BEFORE_KEY_EXISTED,
    BaselinesConfig,
    ConfigError,
    DataConfig,
    DiffusionConfig,
    DomainConfig,
    EvaluateConfig,
    GuidanceConfig,
    ModelConfig,
    Params,
    SamplersConfig,
    SamplingSteps,
    TrainConfig,
)

__all__ = [
    "BEFORE_KEY_EXISTED", "BaselinesConfig", "ConfigError", "DataConfig", "DiffusionConfig", "DomainConfig",
    "EvaluateConfig", "GuidanceConfig", "ModelConfig", "Params", "SamplersConfig", "SamplingSteps", "TrainConfig",
    "as_plain_dict", "load_params", "parse", "parse_recorded",
]
