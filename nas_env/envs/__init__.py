"""Gymnasium environments of cell search; ``import nas_env`` registers their ids."""

from .cell_env import NASCellEnv
from .large_env import NASCellLargeEnv
from .search_env import CellSearchEnv
from .seq_env import NASCellSeqEnv

__all__ = ["CellSearchEnv", "NASCellEnv", "NASCellLargeEnv", "NASCellSeqEnv"]
