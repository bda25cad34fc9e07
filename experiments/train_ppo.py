"""Search cell architectures with PPO and the autoregressive LSTM controller: ``nas-env train``.

The same command as ``nas-env train`` (:mod:`nas_env.commands.train`), with the same flags and
outputs, for a clone of the repository:

    python experiments/train_ppo.py                                # experiment 1: small, r_val
    python experiments/train_ppo.py --reward param                 # experiment 2: small, r_param
    python experiments/train_ppo.py --seeds 0-9 --iterations 100   # ten seeds, in parallel
    python experiments/train_ppo.py --env-id NASCell-large-v0 --iterations 2   # A_large, live

``--help`` lists the flags.
"""

from __future__ import annotations

from nas_env.commands.run_summary import (  # noqa: F401  (the names this script always had)
    aggregate, base_env, describe, greedy_regret, json_safe, table_optimum)
from nas_env.commands.train import (  # noqa: F401
    build_parser, check_args, is_live, make_backend, make_env, run_one)
from nas_env.commands.train import main as train_main


def main() -> None:
    """``nas-env train`` with this script's command line."""
    train_main(prog="train_ppo.py")


if __name__ == "__main__":
    main()
