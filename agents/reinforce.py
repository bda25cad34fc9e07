"""REINFORCE with a moving-average baseline (Zoph & Le, 2016), over a ``MultiDiscrete`` space.

The controller is the project's :class:`~agents.token_decoder.TokenDecoder` (the actor of the
PPO policy, alone): an LSTM that writes the action token by token. Each iteration it samples
``batch_size`` architectures, evaluates them, and takes one Adam step on

.. math:: L = -\\frac{1}{m} \\sum_{k=1}^{m} (R_k - b) \\log p(a_k)

where ``b`` is an exponential moving average of the rewards seen so far (Zoph & Le's baseline):
after each batch ``b <- decay * b + (1 - decay) * mean(R)``, starting at the first batch's mean.
There is no critic, no clipping and no reuse of a batch: the plain policy gradient, against which
PPO's machinery is judged.

The advantage is in the reward's units. Adam divides each step by a running gradient scale, so
what matters is how advantages compare over time: under r_param the -100 penalty makes the first
batches' advantages large, and later accuracy differences of tenths of a point move the
controller slowly. That is the method as published; it is not tuned per reward here.

::

    from agents.reinforce import reinforce
    trace = reinforce(gym.make("NASCell-small-v0"), budget=200, seed=0)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch as th

from .search_trace import EvaluationRecorder, SearchTrace, run_search
from .token_decoder import TokenDecoder, path_log_prob


def reinforce(
    env: gym.Env,
    budget: int,
    seed: int,
    batch_size: int = 5,
    learning_rate: float = 0.01,
    baseline_decay: float = 0.9,
    hidden_size: int = 32,
) -> SearchTrace:
    """REINFORCE for ``budget`` evaluated architectures.

    :param env: a one-step env whose ``MultiDiscrete`` action is an architecture.
    :param budget: architectures to evaluate; the last batch is cut to fit.
    :param seed: seeds the env's reset, the controller's initial weights and its samples.
    :param batch_size: architectures per policy-gradient step (Zoph & Le's ``m``).
    :param learning_rate: Adam's step size.
    :param baseline_decay: the moving average's decay; closer to 1 is a slower baseline.
    :param hidden_size: LSTM units of the controller.
    """
    if batch_size < 1 or not 0.0 <= baseline_decay < 1.0:
        raise ValueError(f"batch_size={batch_size!r} must be >= 1 and baseline_decay="
                         f"{baseline_decay!r} in [0, 1)")
    return run_search("reinforce", _search, env, budget, seed, batch_size=batch_size,
                      learning_rate=learning_rate, baseline_decay=baseline_decay,
                      hidden_size=hidden_size)


def _search(recorder: EvaluationRecorder, budget: int, rng: np.random.Generator, seed: int,
            batch_size: int, learning_rate: float, baseline_decay: float, hidden_size: int) -> None:
    # The controller draws from torch's global generator: fork it so that a search is
    # reproducible from its seed and leaves the caller's torch state as it found it.
    with th.random.fork_rng(devices=[]):
        th.manual_seed(seed)
        controller = TokenDecoder(recorder.action_space.nvec.tolist(), hidden_size=hidden_size)
        optimizer = th.optim.Adam(controller.parameters(), lr=learning_rate)
        baseline = None
        for start in range(0, budget, batch_size):
            with th.no_grad():
                actions, _ = controller.decode(min(batch_size, budget - start))
            rewards = th.tensor([recorder.evaluate(a) for a in actions.numpy()], dtype=th.float64)
            baseline = rewards.mean() if baseline is None else baseline
            log_prob = path_log_prob(controller.token_log_probs(actions), actions)
            loss = -((rewards - baseline).float() * log_prob).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            baseline = baseline_decay * baseline + (1 - baseline_decay) * rewards.mean()
