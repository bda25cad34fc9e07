"""Does the critic help? PPO on the shipped table under several baseline settings, many seeds.

The observation of a one-step NAS env is constant, so the critic's value is one number for the
whole batch, and SB3's advantage normalisation subtracts the batch mean anyway. This study runs
each setting for ``--seeds`` seeds under r_val and r_param, ``--iterations`` iterations each, and
judges every run by the cells it sampled (:mod:`agents.search_stats`):

``constant``    (``today`` in docs/tuning.md) the defaults of the time: ``vf_coef=0.5``, ``max_grad_norm=inf``,
              advantages normalised, a constant entropy bonus of 0.1
``no_critic``   ``vf_coef=0`` and SB3's default gradient clipping (``max_grad_norm=0.5``) restored
``critic_only`` advantages not normalised: the critic's value is the only baseline
``no_value_loss`` ``vf_coef=0`` with today's unclipped gradients: does the value loss touch the actor?

    python experiments/critic_study.py --seeds 20 --iterations 200 --workers 2

It is ``experiments/ppo_study.py`` with these four settings as its default.

Resumable: ``OUT/runs.csv`` gains each run's row as it finishes, and a rerun skips the runs it
already holds. Writes ``OUT/runs.csv`` (one row per run) and ``OUT/summary.md`` (per setting and reward: runs
that converged on the optimum / within seed noise of it, the median convergence iteration, runs
whose greedy cell at the end is the optimum / within noise, the median greedy regret), and prints
the summary.
"""

from __future__ import annotations

from ppo_study import SETTINGS, main  # the same study; only its defaults differ

if __name__ == "__main__":
    main(default_settings=list(SETTINGS), default_out="runs/critic_study",
         description=__doc__)
