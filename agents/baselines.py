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
    (:func:`agents.ppo_search.make_ppo` and its defaults, 20 architectures per iteration; it
    also takes ``make_ppo``'s settings as keywords).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from .evolution import regularized_evolution
from .random_search import random_search
from .reinforce import reinforce
from .search_trace import EvaluationRecorder, SearchTrace, run_search


def ppo_search(env: gym.Env, budget: int, seed: int, log_dir: str | os.PathLike | None = None,
               **settings: Any) -> SearchTrace:
    """PPO over ``env`` for ``budget`` evaluated architectures.

    ``learn`` runs whole rollouts of ``n_steps`` architectures, so it may evaluate up to
    ``n_steps - 1`` more than ``budget``; the trace keeps the first ``budget``.

    :param log_dir: where SB3's logger writes ``progress.csv`` (one row per iteration: the
        previous update's ``train/approx_kl``, ``train/n_updates``, ``train/ent_coef``, ...);
        ``None``: no log.
    :param settings: :func:`agents.ppo_search.make_ppo`'s keywords (``learning_rate``,
        ``ent_coef``, ``target_kl``, ...), which it checks; none: the project's defaults.
    """
    return run_search("ppo", _ppo, env, budget, seed, log_dir=log_dir, **settings)


def _ppo(recorder: EvaluationRecorder, budget: int, rng: np.random.Generator, seed: int,
         log_dir: str | os.PathLike | None = None, **settings: Any) -> None:
    from .ppo_search import make_ppo  # SB3 is only needed for this method

    model = make_ppo(recorder, seed, **settings)
    if log_dir is not None:
        from stable_baselines3.common.logger import configure

        model.set_logger(configure(str(log_dir), ["csv"]))
    model.learn(total_timesteps=budget)
    if log_dir is not None:  # the last update's figures, which learn() leaves unwritten
        model.logger.dump(model.num_timesteps)
        model.logger.close()


SEARCHERS: dict[str, Callable[[gym.Env, int, int], SearchTrace]] = {
    "random": functools.partial(random_search, replace=True),
    "random_norepeat": functools.partial(random_search, replace=False),
    "evolution": regularized_evolution,
    "reinforce": reinforce,
    "ppo": ppo_search,
}
"""Method name -> ``search(env, budget, seed)``; the names are those of the traces."""
