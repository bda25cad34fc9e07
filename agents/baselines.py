"""Every searcher behind one signature, ``search(env, budget, seed) -> SearchTrace``.

:data:`SEARCHERS` maps a method's name to its searcher. Each evaluates at most ``budget``
architectures of a one-step env (one env step each, counted by
:class:`~agents.search_trace.EvaluationRecorder`), is deterministic for a given seed, and
returns the :class:`~agents.search_trace.SearchTrace` of what it evaluated::

    import gymnasium as gym
    import nas_env
    from agents.baselines import SEARCHERS

    env = gym.make("NASCell-small-v0", reward="param")
    trace = SEARCHERS["evolution"](env, budget=200, seed=0)
    optimum = env.unwrapped.table.optimum(env.unwrapped.reward_fn)
    trace.regret(optimum.reward)[-1], trace.first_hit([optimum.arch]), trace.convergence()

``random``, ``random_norepeat``
    :mod:`agents.random_search`, with and without replacement.
``evolution``
    :mod:`agents.evolution`, regularized (aging) evolution of Real et al.
``reinforce``
    :mod:`agents.reinforce`, REINFORCE with a moving-average baseline (Zoph & Le).
``ppo``
    :func:`ppo_search`: the project's PPO with the autoregressive LSTM policy
    (:func:`agents.ppo_search.make_ppo` and its defaults, 20 architectures per iteration).
"""

from __future__ import annotations

import functools
from typing import Callable

import gymnasium as gym
import numpy as np

from .evolution import regularized_evolution
from .random_search import random_search
from .reinforce import reinforce
from .search_trace import EvaluationRecorder, SearchTrace, run_search


def ppo_search(env: gym.Env, budget: int, seed: int) -> SearchTrace:
    """PPO over ``env`` for ``budget`` evaluated architectures.

    ``learn`` runs whole rollouts of ``n_steps`` architectures, so it may evaluate up to
    ``n_steps - 1`` more than ``budget``; the trace keeps the first ``budget``.
    """
    return run_search("ppo", _ppo, env, budget, seed)


def _ppo(recorder: EvaluationRecorder, budget: int, rng: np.random.Generator, seed: int) -> None:
    from .ppo_search import make_ppo  # SB3 is only needed for this method

    make_ppo(recorder, seed).learn(total_timesteps=budget)


SEARCHERS: dict[str, Callable[[gym.Env, int, int], SearchTrace]] = {
    "random": functools.partial(random_search, replace=True),
    "random_norepeat": functools.partial(random_search, replace=False),
    "evolution": regularized_evolution,
    "reinforce": reinforce,
    "ppo": ppo_search,
}
"""Method name -> ``search(env, budget, seed)``; the names are those of the traces."""
