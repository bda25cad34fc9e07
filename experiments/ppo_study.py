"""PPO settings side by side on a shipped reward table, many seeds, judged by the cells sampled.

Each setting in ``--settings`` runs for every seed in ``--seeds`` under each reward in
``--rewards``, ``--iterations`` iterations each, and every run is judged by the cells it sampled
(:mod:`agents.search_stats`): the iteration from which every batch is at least 90% one cell
(lasting convergence), on which cell, and the greedy cell at the end.

Settings (:data:`SETTINGS`): the critic study's (``constant``, its ``today``: a constant entropy
bonus of 0.1; ``no_critic``, ``critic_only``, ``no_value_loss``, see
``experiments/critic_study.py``) and entropy schedules, named ``ent-START-END-N`` (``ent_coef``
falls linearly from START to END over the first N updates,
:class:`agents.entropy_schedule.EntropySchedule`); any such name is accepted. A name followed by
``+floor`` (e.g. ``ent-0.2-0-20+floor``) also trains r_param on the penalty replaced by a floor
(:data:`FLOOR_SUFFIX`), one with ``+fused`` runs the policy's Adam as torch's fused kernel
(:data:`FUSED_SUFFIX`), one with ``+ftz`` flushes denormal floats (:data:`FTZ_SUFFIX`), and one
with ``+mask`` proposes only cells within the r_param budget (:data:`MASK_SUFFIX`).

    python experiments/ppo_study.py --settings constant ent-0.1-0-20 --seeds 100-119 \\
        --iterations 200 --dataset mnist --out-dir runs/entropy_study

Resumable: ``OUT/runs.csv`` gains each run's row as it finishes, and a rerun skips the runs it
already holds. Writes ``OUT/summary.md`` over every run in ``runs.csv`` and prints the same table
for the runs asked for (per setting and reward: runs that converged on the
optimum / within seed noise of it, the median iteration from which every batch was 90% the
optimum (never, for a run that did not end so), the median and the largest convergence iteration
of the runs that converged, runs whose greedy cell at the end is the optimum / within noise) and
prints it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd

import nas_env  # noqa: F401  (registers the env ids)
from agents.callbacks import SearchProgressCallback
from agents.entropy_schedule import EntropySchedule
from agents.ppo_search import PPO_DEFAULTS, make_ppo
from agents.reward_transforms import PenaltyToFloor
from nas_env.cli import parse_int_list
from nas_env.spaces import SmallCell, parse_architecture
from nas_env.table_builder import atomic_write_text

CONSTANT = {"ent_coef": 0.1, "ent_decay_iterations": 0}  # the entropy bonus before the schedule
SETTINGS = {
    "constant": CONSTANT,
    "no_critic": {**CONSTANT, "vf_coef": 0.0, "max_grad_norm": 0.5},
    "critic_only": {**CONSTANT, "normalize_advantage": False},
    "no_value_loss": {**CONSTANT, "vf_coef": 0.0},
}
"""Named changes from :func:`agents.ppo_search.make_ppo`'s defaults. ``constant`` is the
critic study's ``today``: the defaults of the time, a constant entropy bonus of 0.1."""


FLOOR_SUFFIX = "+floor"
"""A setting's name with this suffix trains on r_param with the penalty replaced by a floor
below the worst feasible cell (:class:`agents.reward_transforms.PenaltyToFloor`, what
``nas-env train --reward-transform penalty-to-floor`` does); runs are judged on the raw reward."""


FUSED_SUFFIX = "+fused"
"""A setting's name with this suffix runs the policy's Adam as torch's fused kernel
(``make_ppo(fused_adam=True)``); without it, every setting pins the one-tensor-at-a-time Adam
its stored runs were made with."""


FTZ_SUFFIX = "+ftz"
"""A setting's name with this suffix runs ``learn`` with denormal floats flushed to zero
(``make_ppo(flush_denormal=True)``); without it, every setting pins the mode its stored runs
were made with (off)."""


MASK_SUFFIX = "+mask"
"""A setting's name with this suffix lets the policy propose only the cells within the r_param
budget (``make_ppo(mask_over_budget=True)``: the env's ``allowed_actions()`` masks the
autoregressive decoder); a no-op under r_val."""


def parse_setting(name: str) -> dict:
    """The :func:`~agents.ppo_search.make_ppo` keywords a setting's name stands for (always with
    ``fused_adam``), plus ``reward_transform`` for a name ending in :data:`FLOOR_SUFFIX`."""
    for suffix, extra in ((FLOOR_SUFFIX, {"reward_transform": "penalty-to-floor"}),
                          (FUSED_SUFFIX, {"fused_adam": True}),
                          (FTZ_SUFFIX, {"flush_denormal": True}),
                          (MASK_SUFFIX, {"mask_over_budget": True})):
        if name.endswith(suffix):
            return {**parse_setting(name[:-len(suffix)]), **extra}
    if name in SETTINGS:
        return {**SETTINGS[name], "fused_adam": False, "flush_denormal": False}
    parts = name.split("-")
    if len(parts) == 4 and parts[0] == "ent":
        try:
            start, end, iterations = float(parts[1]), float(parts[2]), int(parts[3])
            EntropySchedule(start, end, iterations)
        except ValueError:
            pass
        else:
            return {"ent_coef": start, "ent_coef_final": end, "ent_decay_iterations": iterations,
                    "fused_adam": False, "flush_denormal": False}
    raise argparse.ArgumentTypeError(
        f"setting {name!r}; allowed: {', '.join(SETTINGS)} or ent-START-END-N (N >= 1), "
        f"either followed by any of {FUSED_SUFFIX!r}, {FTZ_SUFFIX!r}, {MASK_SUFFIX!r} and {FLOOR_SUFFIX!r}")


def run_one(job: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    setting, reward, seed, iterations, env_kwargs = job
    env = gym.make("NASCell-small-v0", reward=reward, **env_kwargs)
    base = env.unwrapped
    optimum = base.table.optimum(base.reward_fn)
    settings = dict(parse_setting(setting))
    if settings.pop("reward_transform", None) == "penalty-to-floor":
        env = PenaltyToFloor(env)
    model = make_ppo(env, seed, **settings)
    with tempfile.TemporaryDirectory() as tmp:
        progress = SearchProgressCallback(Path(tmp) / "it.csv", optimum,
                                          parse_architecture(optimum.arch).to_action(),
                                          progress=False, total_iterations=iterations)
        start = time.perf_counter()
        model.learn(total_timesteps=iterations * PPO_DEFAULTS["n_steps"], callback=progress)
        wall = time.perf_counter() - start
    greedy, _ = model.predict(model.env.reset(), deterministic=True)
    greedy_arch = base.decode(greedy[0]).to_string()
    values = base.table.rewards(base.reward_fn)
    summary = progress.summary()
    return {"setting": setting, "reward": reward, "seed": seed,
            "first_hit_iteration": summary["first_hit_iteration"],
            "convergence_iteration": summary["convergence_iteration"],
            "converged_arch": summary["converged_arch"],
            "converged_on_optimum": summary["converged_on_optimum"],
            "converged_near_optimum": summary["converged_near_optimum"],
            "greedy_arch": greedy_arch, "greedy_is_optimum": greedy_arch == optimum.arch,
            "greedy_near_optimum": greedy_arch in optimum.near,
            "greedy_regret": float(optimum.reward - values[SmallCell.from_string(greedy_arch).index]),
            "wall_seconds": wall}


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per setting and reward. ``on optimum from (median)`` is the median over all runs
    of the iteration from which every batch was at least 90% the optimum, a run that did not end
    so counting as never (infinite); the other two convergence columns cover the runs that
    converged on any cell."""
    rows = []
    for (setting, reward), group in runs.groupby(["setting", "reward"], sort=False):
        conv = group["convergence_iteration"].dropna()
        on_optimum = group["converged_on_optimum"].fillna(False).astype(bool)
        on_optimum_from = np.where(on_optimum, group["convergence_iteration"], np.inf)
        rows.append({
            "setting": setting, "reward": reward, "seeds": len(group),
            "converged on optimum": int(on_optimum.sum()),
            "on optimum from (median)": float(np.median(on_optimum_from)),
            "converged within noise": int(group["converged_near_optimum"].fillna(False).sum()),
            "convergence iteration (median)": float(conv.median()) if len(conv) else np.nan,
            "convergence iteration (max)": float(conv.max()) if len(conv) else np.nan,
            "greedy = optimum": int(group["greedy_is_optimum"].sum()),
            "greedy within noise": int(group["greedy_near_optimum"].sum()),
            "greedy regret (median)": float(group["greedy_regret"].median()),
        })
    return pd.DataFrame(rows)


def main(default_settings: list[str] | None = None, default_out: str = "runs/ppo_study",
         description: str = __doc__) -> None:
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=default_settings or ["constant"],
                        help="settings to run (default: %(default)s)")
    parser.add_argument("--seeds", default="0-19",
                        help="seeds, e.g. 0-19 or 100-119 (an integer N alone means 0 to N-1)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--rewards", nargs="+", default=["val", "param"], choices=["val", "param"])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"],
                        help="whose shipped fast table to search (default: %(default)s)")
    parser.add_argument("--table-path", default=None, help="a table instead of the shipped one")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out-dir", default=default_out)
    args = parser.parse_args()
    for name in args.settings:
        try:
            parse_setting(name)
        except argparse.ArgumentTypeError as err:
            parser.error(str(err))
    seeds = (list(range(int(args.seeds))) if args.seeds.isdigit() else parse_int_list(args.seeds))

    env_kwargs = ({"table_path": args.table_path} if args.table_path
                  else {"dataset": args.dataset})
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.csv"
    done = pd.read_csv(path).to_dict("records") if path.exists() else []
    have = {(r["setting"], r["reward"], int(r["seed"])) for r in done}
    jobs = [(s, r, seed, args.iterations, env_kwargs)
            for s in args.settings for r in args.rewards for seed in seeds
            if (s, r, seed) not in have]
    print(f"{len(done)} runs in {path}, {len(jobs)} to run", flush=True)
    rows = list(done)

    def keep(result: dict) -> None:
        rows.append(result)
        atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))

    if args.workers == 1:
        for job in jobs:
            keep(run_one(job))
    else:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for result in pool.imap_unordered(run_one, jobs):
                keep(result)
    if not rows:
        print("no runs to summarise")
        return
    every = pd.DataFrame(rows)
    # summary.md covers every run the folder holds, settings in the order they were first run;
    # the printed table, the runs this command asked for.
    first_run = {name: i for i, name in enumerate(dict.fromkeys(every["setting"]))}
    atomic_write_text(out / "summary.md", markdown(every, first_run) + "\n")
    asked = every[every["setting"].isin(args.settings) & every["reward"].isin(args.rewards)
                  & every["seed"].isin(seeds)]
    print(markdown(asked, {name: i for i, name in enumerate(args.settings)}))


def markdown(runs: pd.DataFrame, order: dict) -> str:
    """:func:`summarise`'s table of ``runs`` as markdown, settings in ``order``."""
    runs = runs.sort_values(["setting", "reward", "seed"],
                            key=lambda c: c.map(order) if c.name == "setting" else c)
    return summarise(runs).to_markdown(index=False, floatfmt=".3g")


if __name__ == "__main__":
    main()
