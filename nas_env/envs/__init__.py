"""Gymnasium environments over the reward tables; ``import nas_env`` registers their ids."""

from .cell_env import NASCellEnv, TableSearchEnv
from .seq_env import NASCellSeqEnv

__all__ = ["NASCellEnv", "NASCellSeqEnv", "TableSearchEnv"]
