"""An entropy bonus that fades: PPO's ``ent_coef`` set afresh before every update.

SB3's PPO takes a constant ``ent_coef``. A constant bonus large enough to keep the controller
sampling widely while it looks for the best cell also keeps a share of every later batch away
from that cell, so a search that has found its answer holds it with less than full confidence for
dozens of iterations (``docs/tuning.md``). :class:`EntropySchedule` lowers the bonus linearly over
the first iterations and then holds it.
"""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class EntropySchedule(BaseCallback):
    """Set ``model.ent_coef`` before each PPO update: ``start`` for the first update, falling
    linearly to ``end`` at update ``1 + iterations``, then ``end`` for good.

    SB3 calls ``on_rollout_end`` after a batch is collected and before the update that uses it,
    so update ``k`` (from 1) trains with ``start + (end - start) * min(1, (k - 1) / iterations)``.

    :param start: the bonus of the first update (the controller's default is 0.1).
    :param end: the bonus once the schedule has run out.
    :param iterations: updates over which it falls (0: ``end`` from the first update on).
    """

    def __init__(self, start: float, end: float, iterations: int) -> None:
        super().__init__()
        for name, value in (("start", start), ("end", end)):
            if not value >= 0:
                raise ValueError(f"{name}={value!r}; an entropy coefficient must be >= 0")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"iterations={iterations!r}; allowed: an integer >= 0")
        self.start, self.end, self.iterations = float(start), float(end), iterations
        self.updates = 0

    def value(self, update: int) -> float:
        """The coefficient of update ``update`` (counted from 1)."""
        if self.iterations == 0:
            return self.end
        done = min(1.0, (update - 1) / self.iterations)
        return self.start + (self.end - self.start) * done

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.updates += 1
        self.model.ent_coef = self.value(self.updates)
        self.logger.record("train/ent_coef", self.model.ent_coef)

    def __repr__(self) -> str:
        return f"EntropySchedule(start={self.start}, end={self.end}, iterations={self.iterations})"
