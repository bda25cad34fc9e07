"""PPO set up for one-step architecture search: the defaults every script shares.

Episodes are one action and 20 actions make an update; the defaults below differ from SB3's for
the reasons given next to :data:`PPO_DEFAULTS`. The measurements behind each, and the commands
that reproduce them, are in ``docs/tuning.md``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from .autoregressive_policy import AutoregressiveLSTMPolicy

PPO_DEFAULTS: dict[str, Any] = dict(
    n_steps=20,                 # the paper's batch of 20 architectures per iteration
    batch_size=20,              # one minibatch of the whole batch per epoch
    learning_rate=1e-2,         # 20 samples give a small signal: use each batch harder than 3e-4
    n_epochs=10,                # ditto; PPO's clip and target_kl bound each update
    clip_range=0.2,             # SB3's
    ent_coef=0.1,               # without it the controller locks onto the first near-best cell
    vf_coef=0.5,                # SB3's; the critic's effect is measured in docs/tuning.md
    max_grad_norm=float("inf"),  # SB3's joint clip let r_param's value loss starve the actor
    gamma=1.0,                  # one action per episode: advantage = reward - baseline
    gae_lambda=1.0,             # ditto
    target_kl=0.05,             # stops updates that would throw a converged controller off
    normalize_advantage=True,   # SB3's
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
