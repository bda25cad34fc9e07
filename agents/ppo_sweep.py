"""Named PPO settings for A_large's 20 decisions per cell, and the settings a PPO search runs with.

:func:`agents.ppo_search.make_ppo`'s defaults were chosen on A_small, whose cells are 2
decisions (an op for each of two slots); a 5-block A_large cell is 20 (two inputs and two ops per
block). The entropy bonus is the sum of a cell's decisions' entropies, and SB3's KL estimate is
taken from the whole cell's probability ratio, so the same ``ent_coef`` weighs entropy more
against the advantage and the same ``target_kl`` stops an update sooner. :data:`SWEEP_SETTINGS`
names the changes ``experiments/exp3_study.py --tuning-seeds`` compares; they are derived from
the defaults when this module is imported, so they follow a change of the defaults.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from .ppo_search import ENTROPY_DECAY_DEFAULTS, PPO_DEFAULTS, make_ppo

SCALE = round(math.log(120 ** 2 * 8 ** 10) / math.log(8 ** 2), 1)
"""The largest entropy of a 5-block cell's 20 decisions (ten ops of 8 choices, two inputs of
``b + 1`` choices for each block ``b``: 30.4 nats) over that of A_small's 2 (4.2 nats): 7.3."""

FIRST_ROUND: dict[str, Any] = dict(
    n_steps=20, batch_size=20, learning_rate=1e-2, n_epochs=10, clip_range=0.2, ent_coef=0.1,
    vf_coef=0.5, max_grad_norm=float("inf"), gamma=1.0, gae_lambda=1.0, target_kl=0.05,
    normalize_advantage=True, ent_decay_iterations=0, ent_coef_final=0.0, fused_adam=False,
    flush_denormal=False)
"""The settings experiment 3's first round searched with (the defaults of the time: a constant
entropy bonus of 0.1, SB3's one-tensor-at-a-time Adam, denormal floats kept), in full, so its searches replay from the
cache whatever the defaults."""

_scaled = {"ent_coef": round(PPO_DEFAULTS["ent_coef"] / SCALE, 4),
           "ent_coef_final": round(ENTROPY_DECAY_DEFAULTS["ent_coef_final"] / SCALE, 4),
           "target_kl": round(PPO_DEFAULTS["target_kl"] * SCALE, 3)}
SWEEP_SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "first-round": FIRST_ROUND,
    "kl-scaled": {"target_kl": _scaled["target_kl"]},
    "no-kl": {"target_kl": None},
    "scaled": _scaled,
    "scaled-lr-third": {**_scaled, "learning_rate": PPO_DEFAULTS["learning_rate"] / 3},
}
"""Named changes from :func:`~agents.ppo_search.make_ppo`'s defaults: ``defaults`` (none);
``first-round`` (:data:`FIRST_ROUND`); ``kl-scaled`` (the KL limit times :data:`SCALE`);
``no-kl`` (no KL limit, PPO's clip only); ``scaled`` (the entropy bonus, first and last, divided
by :data:`SCALE` and the KL limit multiplied by it); ``scaled-lr-third`` (``scaled`` with a
third of the learning rate)."""


def ppo_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every setting a PPO search with ``overrides`` runs with: ``make_ppo``'s policy keywords
    and :data:`~agents.ppo_search.PPO_DEFAULTS` and the entropy schedule's defaults, updated by
    ``overrides``."""
    keywords = {name: p.default for name, p in inspect.signature(make_ppo).parameters.items()
                if name in ("policy", "feed", "lstm_hidden_size", "fused_adam", "flush_denormal")}
    return {**keywords, **PPO_DEFAULTS, **ENTROPY_DECAY_DEFAULTS, **(overrides or {})}
