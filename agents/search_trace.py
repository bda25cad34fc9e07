"""What every searcher is measured by: the architectures it evaluated, in order.

A search's cost is the number of architectures it evaluated, one env step of a one-step NAS env
(``NASCell-small-v0``), whatever the searcher. :class:`EvaluationRecorder` wraps the env and
logs every step, so random search, evolution, REINFORCE and PPO are counted by the same code::

    recorder = EvaluationRecorder(gym.make("NASCell-small-v0"))
    recorder.reset(seed=0)
    reward = recorder.evaluate([1, 5])          # step, and reset when the episode ends
    trace = recorder.trace("manual", seed=0)
    optimum = env.unwrapped.table.optimum(env.unwrapped.reward_fn)
    trace.best_so_far(), trace.regret(optimum.reward), trace.first_hit([optimum.arch])

A :class:`SearchTrace` holds the per-evaluation actions, architectures (``info["arch"]``) and
rewards, so regret curves and samples-to-optimum are computed the same way for every method.

Every searcher of :mod:`agents.baselines` is a loop over ``recorder.evaluate`` run by
:func:`run_search`, which does the shared part: wrap, seed, cut the trace at the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Sequence

import gymnasium as gym
import numpy as np

from .search_stats import first_hit, lasting_convergence

@dataclass(frozen=True)
class SearchTrace:
    """The evaluations of one search, in the order they were made.

    :param method: the searcher's name.
    :param seed: the search's seed.
    :param actions: ``(n, T)`` integer actions, one architecture per row.
    :param archs: the architectures' string forms (the env's ``info["arch"]``).
    :param rewards: the ``n`` rewards the env returned.
    """

    method: str
    seed: int
    actions: np.ndarray
    archs: tuple[str, ...]
    rewards: np.ndarray

    def __len__(self) -> int:
        return len(self.rewards)

    def truncated(self, budget: int) -> "SearchTrace":
        """The first ``budget`` evaluations (PPO's ``learn`` rounds up to whole rollouts)."""
        return SearchTrace(self.method, self.seed, self.actions[:budget], self.archs[:budget],
                           self.rewards[:budget])

    def best_so_far(self) -> np.ndarray:
        """Entry ``i``: the best reward among evaluations ``1..i+1``."""
        return np.maximum.accumulate(self.rewards)

    def regret(self, optimum: float) -> np.ndarray:
        """Entry ``i``: ``optimum`` minus the best reward among evaluations ``1..i+1``."""
        return optimum - self.best_so_far()

    def first_hit(self, cells: Collection[str]) -> int | None:
        """The evaluation number (1-based) that first sampled one of ``cells`` (string forms,
        e.g. ``[optimum.arch]`` or ``optimum.near``); ``None`` if none did. By identity: a lucky
        seed of another cell that scores above the optimum's mean is not a hit."""
        return first_hit(self.archs, cells)

    def convergence(self, batch_size: int = 20) -> tuple[int | None, str | None]:
        """:func:`~agents.search_stats.lasting_convergence` of the evaluations cut into batches of
        ``batch_size`` (a PPO iteration's size)."""
        return lasting_convergence(self.archs, batch_size)


class EvaluationRecorder(gym.Wrapper):
    """Log every step of a one-step NAS env as one evaluated architecture.

    The action space must be ``MultiDiscrete``: one action is one architecture.

    :param env: the env to search.
    """

    def __init__(self, env: gym.Env) -> None:
        if not isinstance(env.action_space, gym.spaces.MultiDiscrete) or env.action_space.nvec.ndim != 1:
            raise ValueError(
                f"EvaluationRecorder needs a MultiDiscrete action space with a 1-D nvec (one action "
                f"is one architecture), got {env.action_space}; search a one-step env such as "
                f"NASCell-small-v0."
            )
        super().__init__(env)
        self._actions: list[np.ndarray] = []
        self._archs: list[str] = []
        self._rewards: list[float] = []

    @property
    def num_evaluations(self) -> int:
        return len(self._rewards)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        action = np.asarray(action, dtype=np.int64).copy()
        self._actions.append(action)
        self._archs.append(str(info.get("arch", action.tolist())))
        self._rewards.append(float(reward))
        return obs, reward, terminated, truncated, info

    def evaluate(self, action: Sequence[int]) -> float:
        """Evaluate one architecture: step, then reset if the episode ended. Returns the reward."""
        _, reward, terminated, truncated, _ = self.step(action)
        if terminated or truncated:
            self.env.reset()
        return float(reward)

    def trace(self, method: str, seed: int, since: int = 0) -> SearchTrace:
        """The evaluations from number ``since`` (0-based) on; by default all of them."""
        width = len(self.action_space.nvec)
        actions = np.array(self._actions[since:], dtype=np.int64).reshape(-1, width)
        return SearchTrace(method, seed, actions, tuple(self._archs[since:]),
                           np.array(self._rewards[since:], dtype=np.float64))


def run_search(
    method: str,
    search: Callable[..., None],
    env: gym.Env,
    budget: int,
    seed: int,
    **settings: Any,
) -> SearchTrace:
    """Run ``search(recorder, budget, rng, seed, **settings)`` and return what it evaluated.

    The common frame of every searcher: ``env`` is wrapped in an :class:`EvaluationRecorder`
    (unless it is one, so a caller can count too), reset with ``seed``, and ``search`` gets a
    numpy ``Generator`` seeded with ``seed``. The trace is cut at ``budget`` evaluations.

    :raises ValueError: if ``budget`` is not an integer >= 1.
    """
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget={budget!r} is not allowed; choose an integer >= 1 "
                         "(architectures to evaluate)")
    recorder = env if isinstance(env, EvaluationRecorder) else EvaluationRecorder(env)
    first = recorder.num_evaluations
    recorder.reset(seed=seed)
    search(recorder, int(budget), np.random.default_rng(seed), seed, **settings)
    return recorder.trace(method, seed, since=first).truncated(int(budget))
