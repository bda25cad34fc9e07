"""PPO set up for one-step architecture search: the defaults every script shares.

PPO defaults that differ from SB3's, and why (episodes are one action, 20 actions per update):

- ``n_steps=20``, ``batch_size=20``: the paper's batch of 20 architectures per iteration, one
  minibatch per epoch.
- ``learning_rate=1e-2``, ``n_epochs=10``: with 20 samples an update is cheap and the signal is
  small, so each batch is used harder than SB3's 3e-4 would; PPO's clip bounds every step.
- ``target_kl=0.05`` (SB3's is None): once every sample of a batch is the same cell, the
  normalised advantages are all zero and only the entropy bonus pulls on the policy; Adam scales
  that small gradient up to full-size steps, and ten epochs at lr 1e-2 pushed a converged
  controller off its cell within one update (the optimum's probability fell from 0.9997 to 0.009).
  Stopping an update's epochs once the approximate KL passes 1.5 x 0.05 bounds every update. On
  the fixture table, seeds 10-19, 200 iterations, r_val: without it 9 of 10 seeds ended with the
  optimum as their greedy cell and batches stayed converged in 83-100% of the second half; with it
  10 of 10 and 98-100%, converging at a median iteration of 17 instead of 15 (``--target-kl 0.02``:
  21; also with ``max_grad_norm=0.5``).
- ``max_grad_norm=inf``, no gradient clipping (SB3's is 0.5): SB3 clips the norm of actor and
  critic gradients together, and under r_param a batch that mixes feasible cells with -100 ones
  gives a value loss in the tens of thousands, so the clip shrank the actor's gradient to almost
  nothing; Adam then kept stepping along its momentum, which the entropy bonus had pointed away
  from the converged cell, and three of ten runs on the shipped table left the optimum for a
  neighbouring (in two of them infeasible) cell within a few iterations and never came back. The
  actor and the critic share no parameters and Adam scales each parameter's step itself, so
  nothing needs the joint clip. With it off, no converged run left its cell (r_param, seeds 0-9,
  200 iterations; the remaining failures are early lock-ins on the runner-up cell).
- ``gamma=1``, ``gae_lambda=1``: an episode is one action, so the advantage is the reward minus
  the value baseline.
- ``ent_coef=0.1`` (SB3's is 0): on the shipped MNIST table with the other defaults, r_param
  found and converged on the best feasible cell in 8 of 10 seeds (0-9) at 0.05 and 9 of 10 at
  0.1, and in 9 and 10 of 10 on seeds 10-19 (the failures lock in early on the runner-up, 0.17
  points below); r_val converged in 10 of 10 seeds either way (median iteration 13 and 13.5, at
  most 15 and 18), on the table as of commit 387e93d::

      python experiments/train_ppo.py --reward param --seeds 0-9 --iterations 200 --ent-coef 0.05

  Why an entropy bonus at all (measured first, at 0.05):
  the best cells differ by tenths of a point, and with 20
  samples per batch and no entropy bonus the controller often collapses onto a near-best cell it
  happened to sample first. On the synthetic fixture table, seeds 10-29, 60 iterations: r_val
  converged in 14 of 20 seeds with ``ent_coef=0`` and 20 of 20 with 0.05 (median iteration 12
  and 14.5); r_param with ``--reward-transform penalty-to-floor`` in 16 and 19 of 20 (0.1 gave
  r_val a median of 23 iterations; these figures predate ``max_grad_norm=inf`` above, so
  reproduce them with ``--max-grad-norm 0.5``)::

      python experiments/train_ppo.py --env-kwargs '{"table_path": "tests/fixtures/small_fixture.csv"}' \
          --iterations 60 --seeds 10-29 --ent-coef 0.05 [--reward param --reward-transform penalty-to-floor]
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from .autoregressive_policy import AutoregressiveLSTMPolicy

PPO_DEFAULTS: dict[str, Any] = dict(
    n_steps=20, batch_size=20, learning_rate=1e-2, n_epochs=10, clip_range=0.2, ent_coef=0.1,
    vf_coef=0.5, max_grad_norm=float("inf"), gamma=1.0, gae_lambda=1.0, target_kl=0.05,
    normalize_advantage=True,
)


def make_ppo(
    env: gym.Env | VecEnv,
    seed: int,
    policy: str = "autoregressive",
    feed: str = "sample",
    lstm_hidden_size: int = 100,
    device: str = "cpu",
    **overrides: Any,
) -> PPO:
    """A PPO searcher over ``env`` with :data:`PPO_DEFAULTS` updated by ``overrides``.

    :param policy: ``"autoregressive"`` (:class:`AutoregressiveLSTMPolicy`) or ``"mlp"``
        (SB3's stock ``MlpPolicy``, whose action dimensions are independent).
    """
    if policy not in ("autoregressive", "mlp"):
        raise ValueError(f"policy={policy!r}; allowed: 'autoregressive', 'mlp'")
    unknown = set(overrides) - set(PPO_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown PPO settings {sorted(unknown)}; allowed: {sorted(PPO_DEFAULTS)}")
    venv = env if isinstance(env, VecEnv) else DummyVecEnv([lambda: env])
    venv.seed(seed)
    settings = {**PPO_DEFAULTS, **overrides}
    if policy == "autoregressive":
        return PPO(AutoregressiveLSTMPolicy, venv, seed=seed, device=device,
                   policy_kwargs=dict(feed=feed, lstm_hidden_size=lstm_hidden_size), **settings)
    return PPO("MlpPolicy", venv, seed=seed, device=device, **settings)
