"""Where a PPO iteration's time goes as a search runs: rollout collection, the update, and how
many epochs the update ran before ``target_kl`` stopped it.

    python experiments/profile_ppo_iterations.py --iterations 600 \\
        --env-kwargs '{"table_path": "tests/fixtures/small_fixture.csv"}'

Prints, per window of iterations, the mean milliseconds of ``collect_rollouts`` and ``train`` and
the mean number of epochs per update. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch

import nas_env  # noqa: F401  (registers the env ids)
from agents.ppo_search import make_ppo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--env-kwargs", default="{}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = make_ppo(gym.make("NASCell-small-v0", **json.loads(args.env_kwargs)), args.seed)
    times: dict[str, list[float]] = {"collect": [], "train": []}
    updates: list[int] = []

    def timed(name, method):
        def wrapper(*a, **k):
            start = time.perf_counter()
            out = method(*a, **k)
            times[name].append(time.perf_counter() - start)
            if name == "train":
                updates.append(model._n_updates)
            return out
        return wrapper

    model.collect_rollouts = timed("collect", model.collect_rollouts)
    model.train = timed("train", model.train)
    model.learn(args.iterations * model.n_steps)
    epochs = np.diff([0] + updates)
    edges = sorted({0, 20, 50, 100, *range(200, args.iterations + 1, 200), args.iterations})
    for a, b in zip(edges, edges[1:]):
        if a >= len(epochs):
            break
        print(f"iterations {a + 1}-{b}: collect {1000 * np.mean(times['collect'][a:b]):.1f} ms, "
              f"update {1000 * np.mean(times['train'][a:b]):.1f} ms, "
              f"{np.mean(epochs[a:b]):.2f} epochs per update")


if __name__ == "__main__":
    main()
