"""An entropy bonus that fades: PPO's ``ent_coef`` set afresh before every update.

SB3's PPO takes a constant ``ent_coef``. A constant bonus large enough to keep the controller
sampling widely while it looks for the best cell also keeps a share of every later batch away
from that cell, so a search that has found its answer holds it with less than full confidence for
dozens of iterations (``docs/tuning.md``). :class:`EntropySchedule` lowers the bonus linearly over
the first updates and then holds it; :class:`agents.ppo_search.SearchPPO` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntropySchedule:
    """The entropy coefficient of each PPO update: ``start`` for the first, falling linearly to
    ``end`` at update ``1 + iterations``, then ``end`` for good.

    Update ``k`` (from 1) trains with ``start + (end - start) * min(1, (k - 1) / iterations)``.

    :param start: the bonus of the first update.
    :param end: the bonus once the schedule has run out.
    :param iterations: updates over which it falls (at least 1).
    """

    start: float
    end: float
    iterations: int

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}={value!r}; an entropy coefficient must be a number >= 0")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) \
                or self.iterations < 1:
            raise ValueError(f"iterations={self.iterations!r}; allowed: an integer >= 1")

    def value(self, update: int) -> float:
        """The coefficient of update ``update`` (counted from 1)."""
        done = min(1.0, max(0, update - 1) / self.iterations)
        return float(self.start + (self.end - self.start) * done)
