"""Regularized (aging) evolution of Real et al. (2019), over a ``MultiDiscrete`` architecture space.

The algorithm, as in the authors' reference notebook (google-research ``regularized_evolution``):

1. Evaluate ``population_size`` uniformly random architectures; they are the population.
2. Repeat until the budget is spent: draw ``sample_size`` members of the population uniformly
   (with replacement), take the best of them (the tournament winner), mutate it, evaluate the
   child, append it to the population and remove the *oldest* member (not the worst: aging is
   the regularization).

A mutation changes one token of the action: a position with more than one choice, uniformly, set
to a different value, uniformly (NAS-Bench-201's mutation of one edge's op). The defaults
``population_size=10, sample_size=3`` are those NAS-Bench-201 / NATS-Bench use for their REA
baseline; on a 64-cell space a larger population would spend most of a small budget on step 1.

::

    from agents.evolution import regularized_evolution
    trace = regularized_evolution(gym.make("NASCell-small-v0"), budget=200, seed=0)
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np

from .search_trace import EvaluationRecorder, SearchTrace, run_search


def regularized_evolution(
    env: gym.Env, budget: int, seed: int, population_size: int = 10, sample_size: int = 3
) -> SearchTrace:
    """Aging evolution for ``budget`` evaluated architectures.

    :param env: a one-step env whose ``MultiDiscrete`` action is an architecture.
    :param budget: architectures to evaluate (the initial population counts).
    :param seed: seeds the env's reset, the population and every tournament and mutation.
    :param population_size: ``P``, members alive at a time.
    :param sample_size: ``S``, members drawn for each tournament.
    """
    if population_size < 1 or sample_size < 1:
        raise ValueError(f"population_size={population_size!r} and sample_size={sample_size!r}; "
                         "both must be integers >= 1")
    return run_search("evolution", _search, env, budget, seed,
                      population_size=population_size, sample_size=sample_size)


def mutate(action: np.ndarray, nvec: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``action`` with one token changed to another of its values.

    :raises ValueError: if no token has more than one value (nothing can change).
    """
    positions = np.flatnonzero(nvec > 1)
    if positions.size == 0:
        raise ValueError(f"nvec={nvec.tolist()} has no token with more than one value to mutate")
    child = action.copy()
    t = rng.choice(positions)
    # Draw from the nvec[t] - 1 other values: shift past the current one.
    new = rng.integers(nvec[t] - 1)
    child[t] = new + (new >= action[t])
    return child


def _search(recorder: EvaluationRecorder, budget: int, rng: np.random.Generator, seed: int,
            population_size: int, sample_size: int) -> None:
    nvec = recorder.action_space.nvec
    population: deque[tuple[np.ndarray, float]] = deque()
    for _ in range(min(population_size, budget)):
        action = rng.integers(nvec)
        population.append((action, recorder.evaluate(action)))
    for _ in range(budget - len(population)):
        picks = rng.integers(len(population), size=sample_size)
        # Ties go to the first drawn member, as Python's max does in the reference notebook.
        parent = max((population[i] for i in picks), key=lambda member: member[1])[0]
        child = mutate(parent, nvec, rng)
        population.append((child, recorder.evaluate(child)))
        population.popleft()
