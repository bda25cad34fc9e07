"""Random search over a ``MultiDiscrete`` architecture space: the baseline every searcher must beat.

Two variants, both uniform over the space:

- with replacement (``replace=True``): each architecture is drawn independently, so a search may
  evaluate the same one again. With ``k`` optima among ``N`` architectures the first hit is
  geometric, on average ``N / k`` evaluations (64 on A_small with one optimum).
- without replacement (``replace=False``): a uniformly random order of the space, never
  repeating an architecture. The first hit is on average ``(N + 1) / (k + 1)`` evaluations (32.5
  on A_small), and a budget of ``N - k + 1`` always finds an optimum. Once every architecture has
  been evaluated the search stops, so its trace may be shorter than the budget.

::

    from agents.random_search import random_search
    trace = random_search(gym.make("NASCell-small-v0"), budget=200, seed=0, replace=False)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from .search_trace import EvaluationRecorder, SearchTrace, run_search


def random_search(env: gym.Env, budget: int, seed: int, replace: bool = True) -> SearchTrace:
    """Evaluate ``budget`` uniformly random architectures of ``env``'s action space.

    :param env: a one-step env whose ``MultiDiscrete`` action is an architecture.
    :param budget: architectures to evaluate.
    :param seed: seeds the env's reset and the draws.
    :param replace: ``False``: never evaluate an architecture twice (stop when all are seen).
    """
    method = "random" if replace else "random_norepeat"
    return run_search(method, _search, env, budget, seed, replace=replace)


def _search(recorder: EvaluationRecorder, budget: int, rng: np.random.Generator, seed: int,
            replace: bool) -> None:
    nvec = recorder.action_space.nvec
    size = int(np.prod(nvec.astype(object)))  # exact even where the product overflows int64
    seen: set[tuple[int, ...]] = set()
    for _ in range(budget if replace else min(budget, size)):
        action = rng.integers(nvec)
        if not replace:
            # Rejection keeps the draw uniform over the unseen architectures; near exhaustion of a
            # 64-cell space it costs a few hundred cheap draws, far below one evaluation.
            while tuple(action) in seen:
                action = rng.integers(nvec)
            seen.add(tuple(action))
        recorder.evaluate(action)
