"""chunkline: translates LLM API streams between formats through a pipeline of pluggable stages."""

from __future__ import annotations

from . import events
from ._version import __version__
from .conversion import Conversion
from .errors import (
    ChunklineError,
    ConfigError,
    InternalStageError,
    InvalidUpstreamResponse,
    LimitExceeded,
    OptionError,
    PluginError,
    RouteError,
    StageNameError,
    StreamError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamTruncated,
)
from .hookspecs import hookimpl
from .pipeline import (
    DEFAULT_SOURCE,
    DEFAULT_STAGES,
    DEFAULT_TARGET,
    MIDDLE_STAGES,
    Pipeline,
    list_plugins,
)
from .plugins import PluginInfo
from .stage import (
    NOT_BOUNDARIES,
    ChunkPolicy,
    ChunkPolicySpec,
    DecoderSpec,
    EncoderSpec,
    Option,
    Options,
    Stage,
    StageSpec,
    positive_int,
)
from .stagelist import StageList, default_stages

__all__ = [
    "DEFAULT_SOURCE",
    "DEFAULT_STAGES",
    "DEFAULT_TARGET",
    "MIDDLE_STAGES",
    "NOT_BOUNDARIES",
    "ChunkPolicy",
    "ChunkPolicySpec",
    "ChunklineError",
    "ConfigError",
    "Conversion",
    "DecoderSpec",
    "EncoderSpec",
    "InternalStageError",
    "InvalidUpstreamResponse",
    "LimitExceeded",
    "Option",
    "OptionError",
    "Options",
    "Pipeline",
    "PluginError",
    "PluginInfo",
    "RouteError",
    "Stage",
    "StageList",
    "StageNameError",
    "StageSpec",
    "StreamError",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamTruncated",
    "__version__",
    "default_stages",
    "events",
    "hookimpl",
    "list_plugins",
    "positive_int",
]
