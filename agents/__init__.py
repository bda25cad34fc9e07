"""Searchers over the nas_env environments: the autoregressive LSTM controller for PPO."""

from .autoregressive_policy import AutoregressiveLSTMPolicy
from .distributions import AutoregressiveCategoricalDistribution
from .token_decoder import TokenDecoder

__all__ = ["AutoregressiveLSTMPolicy", "AutoregressiveCategoricalDistribution", "TokenDecoder"]
