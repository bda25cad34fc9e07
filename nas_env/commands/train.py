"""Search cell architectures with PPO and the autoregressive LSTM controller (``nas-env train``).

With no arguments: the paper's first experiment, PPO on ``NASCell-small-v0`` with r_val,
1,000 iterations of 20 sampled architectures, on the shipped reward table, offline.

    nas-env train                                          # experiment 1: small, r_val
    nas-env train --reward param                           # experiment 2: small, r_param
    nas-env train --reward param --budget 100000           # r_param with a budget n of 100,000
    nas-env train --seeds 0-9 --iterations 100             # ten seeds, in parallel
    nas-env train --env-id NASCell-large-v0 --iterations 2 # A_large, live
    nas-env train --env-id NASCell-large-v0 --backend process --workers 2

``python experiments/train_ppo.py`` takes the same flags. A live search (``NASCell-large-v0``,
or ``--evaluator live``) steps one :class:`~nas_env.vec_env.NASBatchVecEnv` of
``--archs-per-iter`` envs, so each PPO iteration's cells are evaluated as one batch: cached cells
cost a lookup, a cell sampled twice is trained once, and ``--backend process|ray`` trains the rest
in parallel (``--ray-address`` joins a cluster; the controller and the cache stay here). A child
run saves its state every ``--checkpoint-every`` seconds under ``--checkpoint-dir``; SIGTERM or
Ctrl-C makes the children in training save theirs at the end of their step (Ray's are cancelled
and resume from their last save) and the command exit (status 143 or 130); the same command again
replays the cached cells and resumes them.

Each run writes ``runs/{env}__{exp}__{seed}__{time}/``: TensorBoard events (``charts/...`` per
iteration, SB3's ``train/...`` losses, the hyperparameters as a text table), ``iterations.csv``,
``summary.json``, ``rewards.png`` and the trained ``model.zip``. Watch with
``tensorboard --logdir runs``; ``nas-env report runs`` draws several runs in one figure.

PPO's defaults here differ from SB3's; ``agents/ppo_search.py`` lists them with a reason each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import gymnasium as gym

import nas_env  # noqa: F401  (registers the env ids)
from agents.ppo_search import ENTROPY_DECAY_DEFAULTS
from agents.ppo_search import PPO_DEFAULTS as DEFAULTS
from nas_env.cli import (add_checkpoint_arguments, add_env_arguments, check_child_device,
                         checkpoint_options, env_keywords, parse_json_object, positive_int,
                         require_dataset)
from nas_env.cli import parse_int_list as parse_seeds  # "0-9", "0,3"
from nas_env.commands.run_summary import (aggregate, base_env, describe, greedy_regret, json_safe,
                                          table_optimum)
from nas_env.run_checkpoint import stop_on_signals

__all__ = ["build_parser", "check_args", "make_env", "run_one", "main", "is_live", "make_backend",
           "base_env", "table_optimum", "json_safe", "greedy_regret", "describe", "aggregate"]


def build_parser(prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """The flags of ``nas-env train`` (and ``experiments/train_ppo.py``)."""
    p = argparse.ArgumentParser(prog=prog, description=description or __doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("environment")
    g.add_argument("--env-id", default="NASCell-small-v0", help="registered env id (default: %(default)s)")
    add_env_arguments(g)
    g.add_argument("--evaluator", default=None, choices=["table", "live"],
                   help="NASCell-small-v0: look results up in a table or train live (default: the env's)")
    g.add_argument("--env-kwargs", type=parse_json_object, default={},
                   help='more env keywords as JSON, e.g. \'{"table_path": "t.csv", "seed_mode": "sample"}\'')
    g = p.add_argument_group("live evaluation (NASCell-large-v0, --evaluator live)")
    g.add_argument("--backend", default=None, choices=["inline", "process", "ray"],
                   help="who trains a batch: here one at a time, a process pool, or Ray (default: inline)")
    g.add_argument("--workers", type=positive_int, default=None,
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
    g.add_argument("--iterations", type=positive_int, default=1000, help="PPO iterations (default: %(default)s)")
    g.add_argument("--archs-per-iter", type=positive_int, default=20,
                   help="architectures sampled per iteration, PPO's n_steps (default: %(default)s)")
    g = p.add_argument_group("PPO (defaults differ from SB3's; see agents/ppo_search.py)")
    g.add_argument("--learning-rate", type=float, default=DEFAULTS["learning_rate"], help="Adam learning rate")
    g.add_argument("--n-epochs", type=int, default=DEFAULTS["n_epochs"], help="epochs over each batch")
    g.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: archs-per-iter)")
    g.add_argument("--clip-range", type=float, default=DEFAULTS["clip_range"], help="PPO clip range")
    g.add_argument("--ent-coef", type=float, default=DEFAULTS["ent_coef"],
                   help="entropy bonus coefficient of the first update (default: %(default)s)")
    g.add_argument("--ent-decay-iterations", type=int,
                   default=ENTROPY_DECAY_DEFAULTS["ent_decay_iterations"],
                   help="updates over which the entropy bonus falls linearly to --ent-coef-final; "
                        "0 keeps it constant (default: %(default)s)")
    g.add_argument("--ent-coef-final", type=float, default=ENTROPY_DECAY_DEFAULTS["ent_coef_final"],
                   help="the entropy bonus once it has fallen (default: %(default)s)")
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
    g.add_argument("--mask-over-budget", action="store_true",
                   help="propose only cells within the r_param budget (the env's allowed_actions(); "
                        "autoregressive policy, A_small)")
    g = p.add_argument_group("run")
    g.add_argument("--seeds", default="0", help="seeds, e.g. 0 or 0-9 or 0,3 (default: %(default)s)")
    g.add_argument("--seed-workers", type=positive_int, default=os.cpu_count() or 1,
                   help="parallel processes for several seeds of a table search (default: the CPU count)")
    g.add_argument("--exp-name", default=None, help="run name part (default: ppo_<reward>)")
    g.add_argument("--out-dir", default="runs", help="folder of the runs (default: %(default)s)")
    g.add_argument("--device", default="cpu", help="torch device for the policy (default: %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def is_live(args: argparse.Namespace) -> bool:
    """Whether the run trains children (a batch env) rather than looking results up."""
    return args.env_id.startswith("NASCell-large") or "live" in (args.evaluator,
                                                                 args.env_kwargs.get("evaluator"))


def make_backend(args: argparse.Namespace):
    """The backend the flags name (``None``: the env's default, inline)."""
    if args.backend == "ray":
        from nas_env.parallel import RayBackend

        return RayBackend(args.workers, num_cpus=args.cpus_per_child,
                          num_gpus=args.gpus_per_child, address=args.ray_address)
    return args.backend


def check_args(args: argparse.Namespace, prog: str = "nas-env train") -> None:
    """Refuse flag combinations that cannot work, before anything is built."""
    ray_flags = args.ray_address is not None or args.gpus_per_child or args.cpus_per_child != 1.0
    if ray_flags and args.backend != "ray":
        raise SystemExit("--ray-address, --cpus-per-child and --gpus-per-child need --backend ray")
    if not is_live(args) and (args.backend is not None or args.workers is not None):
        raise SystemExit(f"--backend and --workers apply to live searches; {args.env_id} looks "
                         "results up in its reward table (add --evaluator live to train instead)")
    if args.mask_over_budget and (args.policy != "autoregressive" or args.feed != "sample"):
        raise SystemExit("--mask-over-budget needs --policy autoregressive and --feed sample: "
                         "the mask on a token depends on the tokens picked before it")
    if args.child_device is not None and not is_live(args):
        raise SystemExit(f"--child-device applies to live searches; {args.env_id} looks results "
                         "up in its reward table (add --evaluator live to train instead)")
    check_child_device(args.child_device, prog,
                       protocol=args.protocol or args.env_kwargs.get("protocol"))
    if is_live(args) and args.reward_transform != "none":
        raise SystemExit("--reward-transform needs a reward table (it uses the worst feasible "
                         "reward); a live search has none")
    try:
        parse_seeds(args.seeds)
    except ValueError:
        raise SystemExit(f"{prog}: error: --seeds {args.seeds!r} is not allowed; write seeds "
                         "like 0, 0-9 or 0,3") from None
    if is_live(args):
        kwargs = args.env_kwargs
        require_dataset(prog, args.dataset or kwargs.get("dataset"),
                        args.data_root or kwargs.get("data_root"))
    if args.backend == "ray":
        from nas_env.parallel import import_ray

        try:
            import_ray()
        except ImportError as err:
            raise SystemExit(str(err)) from None


def make_env(args: argparse.Namespace):
    """The env of a table search, or the :class:`~nas_env.vec_env.NASBatchVecEnv` of a live one."""
    kwargs = dict(args.env_kwargs)
    if args.evaluator is not None:
        kwargs["evaluator"] = args.evaluator
    kwargs.update(env_keywords(args))
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
        # leaves the other core free (docs/getting-started.md: the default run's measured times).
        import torch

        torch.set_num_threads(1)
    optimum, optimum_action = table_optimum(env)
    batched = hasattr(env, "bases")  # one step of the batch env is one iteration
    hyper = dict(
        n_steps=1 if batched else args.archs_per_iter,
        batch_size=args.batch_size or args.archs_per_iter,
        learning_rate=args.learning_rate, n_epochs=args.n_epochs, clip_range=args.clip_range,
        ent_coef=args.ent_coef, vf_coef=args.vf_coef, max_grad_norm=args.max_grad_norm,
        target_kl=args.target_kl or None, ent_decay_iterations=args.ent_decay_iterations,
        ent_coef_final=args.ent_coef_final,
    )
    model = make_ppo(env, seed, policy=args.policy, feed=args.feed,
                     lstm_hidden_size=args.lstm_hidden_size, device=args.device,
                     mask_over_budget=args.mask_over_budget, **hyper)
    model.set_logger(configure(str(run_dir), ["tensorboard"]))
    writer = next(f.writer for f in model.logger.output_formats
                  if isinstance(f, TensorBoardOutputFormat))
    table = {**vars(args), **DEFAULTS, **hyper, "seed": seed,
             "policy_class": type(model.policy).__name__,
             "fused_adam": bool(model.policy.optimizer.defaults.get("fused")),
             "flush_denormal": getattr(model, "flush_denormal", False)}
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


def main(argv: list[str] | None = None, prog: str = "nas-env train",
         description: str | None = None) -> list[dict]:
    """Run ``nas-env train`` with the flags ``argv`` (default: the command line): one PPO search
    per seed, a paragraph each, and with several seeds their aggregate; returns the summaries.

    :param argv: the flags, without the command's name.
    :param prog: the name errors and ``--help`` give the command.
    :param description: ``--help``'s text above the flags (default: this module's).
    """
    args = build_parser(prog, description).parse_args(argv)
    check_args(args, prog)
    seeds = parse_seeds(args.seeds)
    exp = args.exp_name or f"ppo_{args.reward}"
    stamp = int(time.time())
    jobs = [(args, seed, Path(args.out_dir) / f"{args.env_id}__{exp}__{seed}__{stamp}") for seed in seeds]

    if len(jobs) == 1 or args.backend in ("process", "ray"):
        # A backend's workers are the parallelism; pool workers could not start their own.
        # SIGTERM or Ctrl-C: the children in training save their state and the command stops.
        graceful = is_live(args) and checkpoint_options(args)["checkpoint_dir"] is not None
        from nas_env.parallel import RayClusterError

        try:
            with stop_on_signals(enabled=graceful):
                summaries = [run_one(args, seed, run_dir,
                                     progress=not args.no_progress and len(jobs) == 1)
                             for _, seed, run_dir in jobs]
        except RayClusterError as err:
            raise SystemExit(f"{prog}: {err}") from None
    else:
        workers = max(1, min(args.seed_workers, len(jobs)))
        with mp.get_context("spawn").Pool(workers) as pool:
            summaries = pool.map(_worker, jobs)
    for s in summaries:
        print(describe(s))
    if len(summaries) > 1:
        aggregate(summaries, Path(args.out_dir) / f"{args.env_id}__{exp}__seeds{args.seeds}__{stamp}")
    return summaries
