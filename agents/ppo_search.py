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
from .entropy_schedule import EntropySchedule

PPO_DEFAULTS: dict[str, Any] = dict(
    n_steps=20,                 # the paper's batch of 20 architectures per iteration
    batch_size=20,              # one minibatch of the whole batch per epoch
    learning_rate=1e-2,         # 20 samples give a small signal: use each batch harder than 3e-4
    n_epochs=10,                # ditto; PPO's clip and target_kl bound each update
    clip_range=0.2,             # SB3's
    ent_coef=0.2,               # the first update's bonus: without one the controller locks onto
                                # the first near-best cell; it falls to 0 (below)
    vf_coef=0.5,                # SB3's; the critic's effect is measured in docs/tuning.md
    max_grad_norm=float("inf"),  # SB3's joint clip let r_param's value loss starve the actor
    gamma=1.0,                  # one action per episode: advantage = reward - baseline
    gae_lambda=1.0,             # ditto
    target_kl=0.05,             # stops updates that would throw a converged controller off
    normalize_advantage=True,   # SB3's
)


ENTROPY_DECAY_DEFAULTS: dict[str, Any] = dict(
    ent_decay_iterations=20,    # a constant bonus kept >10% of each batch off the found cell
    ent_coef_final=0.0,
)
"""The entropy schedule of :func:`make_ppo`: ``ent_coef`` falls linearly to ``ent_coef_final``
over the first ``ent_decay_iterations`` updates (0: constant)."""


class SearchPPO(PPO):
    """SB3's PPO whose entropy coefficient follows an :class:`EntropySchedule`, set before
    every update (``None``: SB3's constant ``ent_coef``). The schedule and the number of updates
    so far are saved with the model, so a loaded model continues where it stopped.

    :param ent_schedule: the schedule, or ``None``.
    :param flush_denormal: ``learn`` runs with the CPU treating denormal floats as zero
        (``torch.set_flush_denormal``) and switches that off again when it returns. Once the
        controller has settled, the probabilities of the cells it no longer samples underflow
        into the denormal range, which CPUs compute with slowly (``docs/tuning.md``).
    :param args, kwargs: :class:`~stable_baselines3.PPO`'s.
    """

    def __init__(self, *args: Any, ent_schedule: EntropySchedule | None = None,
                 flush_denormal: bool = False, **kwargs: Any) -> None:
        self.ent_schedule = ent_schedule
        self.flush_denormal = flush_denormal
        self.updates_done = 0
        super().__init__(*args, **kwargs)

    def learn(self, *args: Any, **kwargs: Any):
        if not self.flush_denormal:
            return super().learn(*args, **kwargs)
        import torch

        torch.set_flush_denormal(True)
        try:
            return super().learn(*args, **kwargs)
        finally:
            torch.set_flush_denormal(False)  # torch's default; it offers no way to read the mode

    def train(self) -> None:
        self.updates_done += 1
        if self.ent_schedule is not None:
            self.ent_coef = self.ent_schedule.value(self.updates_done)
        self.logger.record("train/ent_coef", self.ent_coef)
        super().train()


def make_ppo(
    env: gym.Env | VecEnv,
    seed: int,
    policy: str = "autoregressive",
    feed: str = "sample",
    lstm_hidden_size: int = 100,
    device: str = "cpu",
    fused_adam: bool = True,
    flush_denormal: bool = True,
    mask_over_budget: bool = False,
    **overrides: Any,
) -> SearchPPO:
    """A PPO searcher over ``env`` with :data:`PPO_DEFAULTS` and :data:`ENTROPY_DECAY_DEFAULTS`
    updated by ``overrides``: ``ent_coef`` is the first update's entropy bonus, which falls
    linearly to ``ent_coef_final`` over ``ent_decay_iterations`` updates (0 keeps it constant).

    :param policy: ``"autoregressive"`` (:class:`AutoregressiveLSTMPolicy`) or ``"mlp"``
        (SB3's stock ``MlpPolicy``, whose action dimensions are independent).
    :param fused_adam: the autoregressive policy's Adam runs as torch's fused kernel (one call
        for all parameters) instead of SB3's default, one tensor at a time: the same algorithm
        and settings (SB3's ``eps=1e-5``), different rounding (``docs/tuning.md`` compares the
        two). ``MlpPolicy`` always keeps SB3's optimizer.
    :param flush_denormal: ``learn`` treats denormal floats as zero (see :class:`SearchPPO`).
    :param mask_over_budget: the autoregressive policy proposes only the actions the env's
        ``allowed_actions()`` allows (under r_param with a size budget: the cells within it), so
        the budget is kept rather than learnt from the -100 penalty; a no-op under r_val.
    """
    if policy not in ("autoregressive", "mlp"):
        raise ValueError(f"policy={policy!r}; allowed: 'autoregressive', 'mlp'")
    allowed = set(PPO_DEFAULTS) | set(ENTROPY_DECAY_DEFAULTS)
    unknown = set(overrides) - allowed
    if unknown:
        raise ValueError(f"unknown PPO settings {sorted(unknown)}; allowed: {sorted(allowed)}")
    venv = env if isinstance(env, VecEnv) else DummyVecEnv([lambda: env])
    venv.seed(seed)
    settings = {**PPO_DEFAULTS, **ENTROPY_DECAY_DEFAULTS, **overrides}
    decay, final = settings.pop("ent_decay_iterations"), settings.pop("ent_coef_final")
    schedule = EntropySchedule(settings["ent_coef"], final, decay) if decay else None
    if mask_over_budget and policy != "autoregressive":
        raise ValueError("mask_over_budget needs policy='autoregressive'; SB3's MlpPolicy cannot mask actions")
    if policy == "autoregressive":
        policy_kwargs: dict[str, Any] = dict(feed=feed, lstm_hidden_size=lstm_hidden_size)
        if mask_over_budget:
            policy_kwargs["allowed_actions"] = venv.env_method("allowed_actions", indices=0)[0]
        if fused_adam:
            policy_kwargs["optimizer_kwargs"] = dict(eps=1e-5, fused=True)  # SB3's eps for Adam
        return SearchPPO(AutoregressiveLSTMPolicy, venv, seed=seed, device=device,
                         policy_kwargs=policy_kwargs, ent_schedule=schedule,
                         flush_denormal=flush_denormal, **settings)
    return SearchPPO("MlpPolicy", venv, seed=seed, device=device, ent_schedule=schedule,
                     **settings)
