"""Search cell architectures with PPO and the autoregressive LSTM controller.

With no arguments: the paper's first experiment, PPO on ``NASCell-small-v0`` with r_val,
1,000 iterations of 20 sampled architectures, on the shipped reward table, offline.

    python experiments/train_ppo.py                                # experiment 1: small, r_val
    python experiments/train_ppo.py --reward param                 # experiment 2: small, r_param
    python experiments/train_ppo.py --seeds 0-9 --iterations 100   # ten seeds, in parallel
    python experiments/train_ppo.py --env-id NASCell-large-v0 --iterations 2   # A_large, live
    python experiments/train_ppo.py --env-id NASCell-large-v0 --backend process --workers 2

A live search (``NASCell-large-v0``, or ``--evaluator live``) steps one
:class:`~nas_env.vec_env.NASBatchVecEnv` of ``--archs-per-iter`` envs, so each PPO iteration's
cells are evaluated as one batch: cached cells cost a lookup, a cell sampled twice is trained
once, and ``--backend process|ray`` trains the rest in parallel (``--ray-address`` joins a
cluster; the controller and the cache stay here). A child run saves its state every
``--checkpoint-every`` seconds under ``--checkpoint-dir``; SIGTERM or Ctrl-C makes the children
in training save theirs at the end of their step (Ray's are cancelled and resume from their last
save) and the script exit (status 143 or 130); the same command again replays the cached cells
and resumes them.

Each run writes ``runs/{env}__{exp}__{seed}__{time}/``: TensorBoard events (``charts/...`` per
iteration, SB3's ``train/...`` losses, the hyperparameters as a text table), ``iterations.csv``,
``summary.json``, ``rewards.png`` and the trained ``model.zip``. Watch with
``tensorboard --logdir runs``.

PPO's defaults here differ from SB3's; ``agents/ppo_search.py`` lists them with a reason each, ``docs/tuning.md`` the measurements.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import nas_env  # noqa: F401  (registers the env ids)

from agents.ppo_search import PPO_DEFAULTS as DEFAULTS  # noqa: E402
from nas_env.cli import add_checkpoint_arguments, checkpoint_options, require_dataset  # noqa: E402
from nas_env.cli import parse_int_list as parse_seeds  # noqa: E402  ("0-9", "0,3")
from nas_env.run_checkpoint import stop_on_signals  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("environment")
    g.add_argument("--env-id", default="NASCell-small-v0", help="registered env id (default: %(default)s)")
    g.add_argument("--reward", default="val", choices=["val", "param"],
                   help="r_val (validation accuracy) or r_param (-100 over the budget) (default: %(default)s)")
    g.add_argument("--budget", type=float, default=None,
                   help="budget n for r_param (default: the env's, 150,000 cell parameters)")
    g.add_argument("--budget-scope", default=None, choices=["cells", "network"],
                   help="count the cells' or the whole network's parameters (default: the env's, cells)")
    g.add_argument("--protocol", default=None,
                   help="training protocol: the table's (fast) or, live, e.g. cheap (default: the env's)")
    g.add_argument("--dataset", default=None, choices=["mnist", "fashion_mnist"],
                   help="dataset (default: the env's, mnist)")
    g.add_argument("--blocks", type=int, default=None, help="NASCell-large-v0: blocks per cell (default: 5)")
    g.add_argument("--evaluator", default=None, choices=["table", "live"],
                   help="NASCell-small-v0: look results up in a table or train live (default: the env's)")
    g.add_argument("--cache-path", default=None,
                   help="live evaluation cache, SQLite (default: the user cache directory); a seeded "
                        "run with the same cache replays its finished evaluations and continues")
    g.add_argument("--data-root", default=None,
                   help="live: dataset root (default: $NAS_ENV_DATA, else a per-user cache)")
    g.add_argument("--env-kwargs", default="{}",
                   help='more env keywords as JSON, e.g. \'{"table_path": "t.csv", "seed_mode": "sample"}\'')
    g = p.add_argument_group("live evaluation (NASCell-large-v0, --evaluator live)")
    g.add_argument("--backend", default=None, choices=["inline", "process", "ray"],
                   help="who trains a batch: here one at a time, a process pool, or Ray (default: inline)")
    g.add_argument("--workers", type=int, default=None,
                   help="children trained at once: processes, or the CPUs of a local Ray (default: 2; "
                        "Ray: all CPUs)")
    g.add_argument("--ray-address", default=None,
                   help="Ray cluster to join, e.g. auto or ray://head:10001 (default: $RAY_ADDRESS, "
                        "else a local Ray)")
    g.add_argument("--cpus-per-child", type=float, default=1.0,
                   help="Ray: CPUs per child (also its torch threads) (default: %(default)s)")
    g.add_argument("--gpus-per-child", type=float, default=0.0,
                   help="Ray: GPUs per child; 0.25 puts four children on one GPU (default: %(default)s)")
    add_checkpoint_arguments(g)
    g.add_argument("--reward-transform", default="none", choices=["none", "penalty-to-floor"],
                   help="none: train on the paper's reward; penalty-to-floor: train on -100 replaced by "
                        "the table's worst feasible reward minus 1 (logged curves keep the paper's scale)")
    g = p.add_argument_group("search")
    g.add_argument("--iterations", type=int, default=1000, help="PPO iterations (default: %(default)s)")
    g.add_argument("--archs-per-iter", type=int, default=20,
                   help="architectures sampled per iteration, PPO's n_steps (default: %(default)s)")
    g = p.add_argument_group("PPO (defaults differ from SB3's; see agents/ppo_search.py)")
    g.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"], help="Adam learning rate")
    g.add_argument("--n-epochs", type=int, default=DEFAULTS["n_epochs"], help="epochs over each batch")
    g.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: archs-per-iter)")
    g.add_argument("--clip-range", type=float, default=DEFAULTS["clip_range"], help="PPO clip range")
    g.add_argument("--ent-coef", type=float, default=DEFAULTS["ent_coef"], help="entropy bonus coefficient")
    g.add_argument("--vf-coef", type=float, default=DEFAULTS["vf_coef"], help="value loss coefficient")
    g.add_argument("--max-grad-norm", type=float, default=DEFAULTS["max_grad_norm"], help="clip the joint gradient norm of actor and critic (default: inf, no clipping)")
    g.add_argument("--target-kl", type=float, default=DEFAULTS["target_kl"],
                   help="stop an update's epochs early once the approximate KL passes 1.5x this; 0 disables")
    g = p.add_argument_group("policy")
    g.add_argument("--policy", default="autoregressive", choices=["autoregressive", "mlp"],
                   help="the LSTM controller or SB3's stock MlpPolicy (default: %(default)s)")
    g.add_argument("--feed", default="sample", choices=["sample", "softmax"],
                   help="controller input: embedding of the sampled token, or the paper's softmax vector")
    g.add_argument("--lstm-hidden-size", type=int, default=100, help="LSTM units (paper: 100)")
    g = p.add_argument_group("run")
    g.add_argument("--seeds", default="0", help="seeds, e.g. 0 or 0-9 or 0,3 (default: %(default)s)")
    g.add_argument("--seed-workers", type=int, default=os.cpu_count() or 1,
                   help="parallel processes for several seeds of a table search (default: the CPU count)")
    g.add_argument("--exp-name", default=None, help="run name part (default: ppo_<reward>)")
    g.add_argument("--out-dir", default="runs", help="folder of the runs (default: %(default)s)")
    g.add_argument("--device", default="cpu", help="torch device for the policy (default: %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def is_live(args: argparse.Namespace) -> bool:
    """Whether the run trains children (a batch env) rather than looking results up."""
    kwargs = json.loads(args.env_kwargs)
    return args.env_id.startswith("NASCell-large") or "live" in (args.evaluator,
                                                                 kwargs.get("evaluator"))


def make_backend(args: argparse.Namespace):
    """The backend the flags name (``None``: the env's default, inline)."""
    if args.backend == "ray":
        from nas_env.parallel import RayBackend

        return RayBackend(args.workers, num_cpus=args.cpus_per_child,
                          num_gpus=args.gpus_per_child, address=args.ray_address)
    return args.backend


def check_args(args: argparse.Namespace) -> None:
    """Refuse flag combinations that cannot work, before anything is built."""
    ray_flags = args.ray_address is not None or args.gpus_per_child or args.cpus_per_child != 1.0
    if ray_flags and args.backend != "ray":
        raise SystemExit("--ray-address, --cpus-per-child and --gpus-per-child need --backend ray")
    if not is_live(args) and (args.backend is not None or args.workers is not None):
        raise SystemExit(f"--backend and --workers apply to live searches; {args.env_id} looks "
                         "results up in its reward table (add --evaluator live to train instead)")
    if is_live(args) and args.reward_transform != "none":
        raise SystemExit("--reward-transform needs a reward table (it uses the worst feasible "
                         "reward); a live search has none")
    if is_live(args):
        kwargs = json.loads(args.env_kwargs)
        require_dataset("train_ppo.py", args.dataset or kwargs.get("dataset"),
                        args.data_root or kwargs.get("data_root"))
    if args.backend == "ray":
        from nas_env.parallel import import_ray

        try:
            import_ray()
        except ImportError as err:
            raise SystemExit(str(err)) from None


def make_env(args: argparse.Namespace):
    """The env of a table search, or the :class:`NASBatchVecEnv` of a live one."""
    kwargs = json.loads(args.env_kwargs)
    kwargs["reward"] = args.reward
    for key in ("protocol", "dataset", "blocks", "evaluator", "cache_path", "data_root"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    if args.budget is not None:
        kwargs["budget"] = args.budget
    if args.budget_scope is not None:
        kwargs["budget_scope"] = args.budget_scope
    if is_live(args):
        from nas_env.vec_env import NASBatchVecEnv

        return NASBatchVecEnv(args.env_id, n_envs=args.archs_per_iter, backend=make_backend(args),
                              workers=None if args.backend == "ray" else args.workers,
                              **{**checkpoint_options(args), **kwargs})
    env = gym.make(args.env_id, **kwargs)
    if args.reward_transform == "penalty-to-floor":
        from agents.reward_transforms import PenaltyToFloor

        env = PenaltyToFloor(env)
    return env


def base_env(env):
    """The unwrapped cell-search env of a gym env or of a :class:`NASBatchVecEnv`."""
    return env.bases[0] if hasattr(env, "bases") else env.unwrapped


def table_optimum(env):
    """The table's :class:`~nas_env.benchmark.Optimum` under the env's own reward (its best cell
    and the cells within seed noise of it) and the best cell's action; ``(None, None)`` for a
    live search, whose optimum is unknown."""
    base = base_env(env)
    if base.table is None:
        return None, None
    from nas_env.spaces import parse_architecture

    optimum = base.table.optimum(base.reward_fn)
    return optimum, parse_architecture(optimum.arch).to_action()


def json_safe(value):
    """``value`` with every non-finite float written as a string (``"inf"``, ``"nan"``), so the
    JSON is standard (``json`` would write the non-standard ``Infinity`` / ``NaN`` tokens)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def greedy_regret(base, optimum, greedy_arch: str | None) -> float | None:
    """The optimum's mean reward minus the greedy cell's (under the env's reward)."""
    if optimum is None or greedy_arch is None:
        return None
    from nas_env.spaces import SmallCell

    values = base.table.rewards(base.reward_fn)
    return float(optimum.reward - values[SmallCell.from_string(greedy_arch).index])


def run_one(args: argparse.Namespace, seed: int, run_dir: Path, progress: bool) -> dict:
    """One PPO search; returns its summary (also written to ``run_dir/summary.json``)."""
    from stable_baselines3.common.logger import TensorBoardOutputFormat, configure

    from agents.callbacks import SearchProgressCallback
    from agents.ppo_search import make_ppo
    from nas_env.table_builder import atomic_write_text

    env = make_env(args)
    base = base_env(env)
    if base.table is not None:
        # The controller is a 100-unit LSTM, too small for torch's threads to pay; one thread
        # leaves the other core free (README: the default run's measured times, and how).
        import torch

        torch.set_num_threads(1)
    optimum, optimum_action = table_optimum(env)
    batched = hasattr(env, "bases")  # one step of the batch env is one iteration
    hyper = dict(
        n_steps=1 if batched else args.archs_per_iter,
        batch_size=args.batch_size or args.archs_per_iter,
        learning_rate=args.learning_rate, n_epochs=args.n_epochs, clip_range=args.clip_range,
        ent_coef=args.ent_coef, vf_coef=args.vf_coef, max_grad_norm=args.max_grad_norm,
        target_kl=args.target_kl or None,
    )
    model = make_ppo(env, seed, policy=args.policy, feed=args.feed,
                     lstm_hidden_size=args.lstm_hidden_size, device=args.device, **hyper)
    model.set_logger(configure(str(run_dir), ["tensorboard"]))
    writer = next(f.writer for f in model.logger.output_formats
                  if isinstance(f, TensorBoardOutputFormat))
    table = {**vars(args), **DEFAULTS, **hyper, "seed": seed,
             "policy_class": type(model.policy).__name__}
    writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" + "\n".join(
        f"|{k}|{v}|" for k, v in table.items()))

    callback = SearchProgressCallback(
        run_dir / "iterations.csv", optimum, optimum_action, progress=progress,
        total_iterations=args.iterations)
    start = time.perf_counter()
    try:
        model.learn(total_timesteps=args.iterations * args.archs_per_iter, callback=callback)
    except BaseException:
        if callback.iteration == 0:  # nothing finished: leave no run folder behind
            model.logger.close()
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    wall = time.perf_counter() - start
    model.save(run_dir / "model.zip")

    greedy, _ = model.predict(model.env.reset(), deterministic=True)
    greedy_arch = base.decode(greedy[0]).to_string() if hasattr(base, "decode") else None
    live = base.table is None
    summary = {**callback.summary(), "greedy_arch": greedy_arch,
               "greedy_is_optimum": (greedy_arch == optimum.arch) if optimum and greedy_arch else None,
               "greedy_near_optimum": (greedy_arch in optimum.near) if optimum and greedy_arch else None,
               "greedy_regret": greedy_regret(base, optimum, greedy_arch),
               "seed": seed, "env_id": args.env_id, "reward": args.reward,
               "wall_seconds": wall, "simulated_training_seconds": getattr(
                   env, "total_training_time", getattr(base, "total_training_time", None)),
               "run_dir": str(run_dir), "hyperparameters": table}
    if not live:  # a table has no cache: every lookup is free
        summary["cache_hits"] = None
    if batched:
        summary["backend"] = base.evaluator.backend.name
    env.close()
    summary = json_safe(summary)
    atomic_write_text(run_dir / "summary.json",
                      json.dumps(summary, indent=2, default=str, allow_nan=False) + "\n")
    from agents.plotting import plot_runs

    plot_runs([run_dir], run_dir / "rewards.png")
    return summary


def _worker(job: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    args, seed, run_dir = job
    return run_one(args, seed, run_dir, progress=False)


def describe(summary: dict) -> str:
    """One paragraph on one search, judged by the cells it sampled."""
    known = summary["optimum_arch"] is not None
    hit, near = summary["first_hit_iteration"], summary["first_near_hit_iteration"]
    conv, cell = summary["convergence_iteration"], summary["converged_arch"]
    if known:
        judged = ((f"; first sampled the optimum {summary['optimum_arch']} at iteration {hit}"
                   if hit else f"; never sampled the optimum {summary['optimum_arch']}")
                  + (f" (a cell within seed noise of it at iteration {near})"
                     if near and near != hit else "")
                  + (f"; converged (every batch from iteration {conv} on is at least 90% one "
                     f"cell) on {cell}"
                     + (" = the optimum" if summary["converged_on_optimum"] else
                        " (within seed noise of the optimum)" if summary["converged_near_optimum"]
                        else " (not within seed noise of the optimum)")
                     if conv else "; did not converge"))
    else:
        judged = ("; the optimum is unknown (live evaluation), so first hit and convergence do "
                  "not apply")
    greedy = ""
    if summary.get("greedy_arch"):
        greedy = f"; at the end the greedy cell is {summary['greedy_arch']}"
        if summary.get("greedy_is_optimum"):
            greedy += " (the optimum)"
        elif summary.get("greedy_regret") is not None:
            greedy += f" (regret {summary['greedy_regret']:.3f})"
    return (
        f"Seed {summary['seed']}: best cell {summary['best_arch']} with reward "
        f"{summary['best_reward']:.3f}"
        + (f" (table optimum {summary['optimum_reward']:.3f})" if known else "")
        + judged + greedy
        + f". {summary['distinct_archs']} distinct cells seen in {summary['iterations']} iterations "
        f"({summary['wall_seconds']:.0f} s"
        + (f"; {summary['cache_hits']} of {summary['samples']} sampled cells came from the "
           f"evaluation cache, {summary['simulated_training_seconds']:.0f} s of training simulated"
           if summary.get("cache_hits") is not None else "")
        + f"). Logs and figure: {summary['run_dir']}"
    )


def main() -> None:
    args = build_parser().parse_args()
    check_args(args)
    seeds = parse_seeds(args.seeds)
    exp = args.exp_name or f"ppo_{args.reward}"
    stamp = int(time.time())
    jobs = [(args, seed, Path(args.out_dir) / f"{args.env_id}__{exp}__{seed}__{stamp}") for seed in seeds]

    if len(jobs) == 1 or args.backend in ("process", "ray"):
        # A backend's workers are the parallelism; pool workers could not start their own.
        # SIGTERM or Ctrl-C: the children in training save their state and the script stops.
        graceful = is_live(args) and checkpoint_options(args)["checkpoint_dir"] is not None
        from nas_env.parallel import RayClusterError

        try:
            with stop_on_signals(enabled=graceful):
                summaries = [run_one(args, seed, run_dir,
                                     progress=not args.no_progress and len(jobs) == 1)
                             for _, seed, run_dir in jobs]
        except RayClusterError as err:
            raise SystemExit(f"train_ppo.py: {err}") from None
    else:
        workers = max(1, min(args.seed_workers, len(jobs)))
        with mp.get_context("spawn").Pool(workers) as pool:
            summaries = pool.map(_worker, jobs)
    for s in summaries:
        print(describe(s))
    if len(summaries) > 1:
        aggregate(summaries, Path(args.out_dir) / f"{args.env_id}__{exp}__seeds{args.seeds}__{stamp}")


def _quartiles(values: list[float]) -> dict:
    if not values:
        return {"median": None, "q1": None, "q3": None}
    q = np.percentile(values, [25, 50, 75])
    return {"q1": float(q[0]), "median": float(q[1]), "q3": float(q[2])}


def aggregate(summaries: list[dict], out: Path) -> None:
    """Counts and quartiles over several seeds, by cell identity; ``aggregate.json`` and a figure."""
    from agents.plotting import plot_runs
    from nas_env.table_builder import atomic_write_text

    def iterations(key: str, where=lambda s: True) -> list[int]:
        return [s[key] for s in summaries if s[key] is not None and where(s)]

    hits = iterations("first_hit_iteration")
    near_hits = iterations("first_near_hit_iteration")
    convs = iterations("convergence_iteration")
    result = {
        "seeds": [s["seed"] for s in summaries],
        "found_optimum": len(hits), "found_near_optimum": len(near_hits),
        "converged": len(convs),
        "converged_on_optimum": sum(bool(s["converged_on_optimum"]) for s in summaries),
        "converged_near_optimum": sum(bool(s["converged_near_optimum"]) for s in summaries),
        "greedy_is_optimum": sum(bool(s.get("greedy_is_optimum")) for s in summaries),
        "greedy_near_optimum": sum(bool(s.get("greedy_near_optimum")) for s in summaries),
        "first_hit_iteration": _quartiles(hits),
        "first_near_hit_iteration": _quartiles(near_hits),
        "convergence_iteration": _quartiles(convs),
        "max_convergence_iteration": max(convs) if convs else None,
        "greedy_regret": _quartiles(iterations("greedy_regret")),
        "runs": [s["run_dir"] for s in summaries],
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "aggregate.json", json.dumps(json_safe(result), indent=2) + "\n")
    plot_runs([Path(s["run_dir"]) for s in summaries], out / "rewards.png", aggregate=True)
    n = len(summaries)
    hit_when = f" (median iteration {result['first_hit_iteration']['median']})" if hits else ""
    conv_when = (f"; median iteration {result['convergence_iteration']['median']}, latest "
                 f"{result['max_convergence_iteration']}" if convs else "")
    print(
        f"{n} seeds: {len(hits)} sampled the optimum{hit_when}, {len(near_hits)} a cell within "
        f"seed noise of it; {len(convs)} converged (lasting{conv_when}), "
        f"{result['converged_on_optimum']} on the optimum and {result['converged_near_optimum']} "
        f"within seed noise of it; {result['greedy_is_optimum']} end with the optimum as their "
        f"greedy cell, {result['greedy_near_optimum']} with a cell within seed noise of it. "
        f"Aggregate: {out}"
    )


if __name__ == "__main__":
    main()
