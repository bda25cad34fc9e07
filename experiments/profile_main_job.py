"""Where the main job's time goes: the default PPO search on the shipped table, its parts timed.

Runs ``nas-env train`` (the main job's command) for ``--iterations`` iterations with a clock
around each part of a PPO iteration and prints each part's seconds and share of ``model.learn``:

- rollout: ``collect_rollouts`` in all; in it the policy's forward pass (sampling the batch's
  cells), the env steps (SB3's ``DummyVecEnv``, which deep-copies every ``info``) and the search
  callback's per-iteration work;
- update: ``PPO.train`` in all; in it ``evaluate_actions`` (re-scoring the batch), the backward
  pass, the optimizer step, SB3's gradient clipping (computed even at ``max_grad_norm=inf``) and
  SB3's logging.

The clocks wrap the functions themselves (a ``perf_counter`` call on each side), so unlike a
profiler they add almost nothing to small calls.

    python experiments/profile_main_job.py --iterations 200
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from contextlib import ExitStack
from unittest import mock

import torch
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv
from stable_baselines3.ppo import PPO

from agents.autoregressive_policy import AutoregressiveLSTMPolicy
from agents.callbacks import SearchProgressCallback

# (label, owner, attribute): the functions timed, each under its label.
PARTS = [
    ("model.learn (all)", OnPolicyAlgorithm, "learn"),
    ("rollout: collect_rollouts", OnPolicyAlgorithm, "collect_rollouts"),
    ("rollout: policy forward", AutoregressiveLSTMPolicy, "forward"),
    ("rollout: env step (DummyVecEnv)", DummyVecEnv, "step_wait"),
    ("rollout: search callback", SearchProgressCallback, "_on_rollout_end"),
    ("update: PPO.train", PPO, "train"),
    ("update: evaluate_actions", AutoregressiveLSTMPolicy, "evaluate_actions"),
    ("update: backward", torch.Tensor, "backward"),
    ("update: optimizer step", torch.optim.Adam, "step"),
    ("update: gradient clipping", torch.nn.utils, "clip_grad_norm_"),
    ("update: SB3 logging", OnPolicyAlgorithm, "dump_logs"),
]


def timed(seconds: dict[str, float], label: str, function):
    """``function`` with its wall time added to ``seconds[label]`` on every call."""
    @functools.wraps(function, assigned=("__module__", "__name__", "__qualname__", "__doc__"), updated=())
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[label] += time.perf_counter() - start
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200, help="PPO iterations (default: 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from nas_env.commands import train

    seconds = dict.fromkeys((label for label, _, _ in PARTS), 0.0)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as out:
        for label, owner, name in PARTS:
            stack.enter_context(mock.patch.object(owner, name,
                                                  timed(seconds, label, getattr(owner, name))))
        train.main(["--iterations", str(args.iterations), "--seeds", str(args.seed),
                    "--out-dir", out, "--no-progress"])
    learn = seconds["model.learn (all)"] or float("nan")
    print(f"{'part':<34} {'seconds':>8} {'share of learn':>15}")
    for label, value in seconds.items():
        print(f"{label:<34} {value:8.2f} {100 * value / learn:14.1f}%")


if __name__ == "__main__":
    main()
