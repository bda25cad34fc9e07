"""Time PPO with the autoregressive LSTM controller against SB3's stock MlpPolicy on one env.

Each policy runs ``--iterations`` PPO iterations of ``--n-steps`` samples on one env on the CPU,
with the settings of the default search (``agents.ppo_search.make_ppo``: one minibatch of all
samples, 10 epochs, ``target_kl`` and the rest of ``PPO_DEFAULTS``), as ``train_ppo.py`` runs a
table search but without its logging (TensorBoard, the per-iteration callback); the script prints
both wall times and their ratio (``docs/benchmarks.md`` has the goals and the measured figures).

    python experiments/bench_policy.py --env-kwargs '{"table_path": "tests/fixtures/small_fixture.csv"}'
    python experiments/bench_policy.py --toy   # a built-in 8x8 bandit, no reward table needed
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import torch
import nas_env  # noqa: F401  (registers the NASCell ids)
from nas_env.hardware import machine
from agents.ppo_search import make_ppo

TOY_ENV_ID = "ToyBandit-8x8-v0"


def time_ppo(policy: str, env_id: str, env_kwargs: dict, iterations: int, n_steps: int, seed: int,
             feed: str) -> float:
    """Seconds of ``model.learn`` for ``iterations`` PPO iterations (model construction excluded)."""
    env = gym.make(env_id, **env_kwargs)
    model = make_ppo(env, seed, policy=policy, feed=feed, n_steps=n_steps, batch_size=n_steps)
    start = time.perf_counter()
    model.learn(total_timesteps=iterations * n_steps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="NASCell-small-v0", help="gymnasium id (default: NASCell-small-v0)")
    parser.add_argument("--env-kwargs", default="{}", help="JSON keyword arguments for gym.make (default: {})")
    parser.add_argument("--toy", action="store_true", help=f"use the built-in bandit {TOY_ENV_ID} instead of --env-id")
    parser.add_argument("--iterations", type=int, default=200, help="PPO iterations per policy (default: 200)")
    parser.add_argument("--n-steps", type=int, default=20, help="samples per iteration = batch size (default: 20)")
    parser.add_argument("--feed", default="sample", choices=["sample", "softmax"], help="the controller's feed mode")
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs (default: 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default: 1; these networks are too small to gain from more)")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    torch.set_num_threads(args.threads)
    env_id, env_kwargs = args.env_id, json.loads(args.env_kwargs)
    if args.toy:
        gym.register(TOY_ENV_ID, entry_point="agents.toy_bandit:MultiDiscreteBandit")
        env_id, env_kwargs = TOY_ENV_ID, {}

    common = dict(env_id=env_id, env_kwargs=env_kwargs, iterations=args.iterations,
                  n_steps=args.n_steps, seed=args.seed, feed=args.feed)
    controller = time_ppo("autoregressive", **common)
    stock = time_ppo("mlp", **common)
    print(f"env: {env_id} {env_kwargs}")
    print(f"{args.iterations} PPO iterations x {args.n_steps} samples, {args.threads} torch thread(s), device cpu")
    print(f"AutoregressiveLSTMPolicy (feed={args.feed}): {controller:.2f} s")
    print(f"MlpPolicy:                {stock:.2f} s")
    print(f"ratio:                    {controller / stock:.2f}x")


if __name__ == "__main__":
    main()
