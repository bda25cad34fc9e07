"""What a PPO search run says about itself: the table's optimum and the greedy cell's regret, the
run's ``summary.json`` as one paragraph (:func:`describe`), and several seeds' summaries as counts
and quartiles (:func:`aggregate`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def base_env(env):
    """The unwrapped cell-search env of a gym env or of a :class:`~nas_env.vec_env.NASBatchVecEnv`."""
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


def _quartiles(values: list[float]) -> dict:
    if not values:
        return {"median": None, "q1": None, "q3": None}
    q = np.percentile(values, [25, 50, 75])
    return {"q1": float(q[0]), "median": float(q[1]), "q3": float(q[2])}


def aggregate_summaries(summaries: list[dict]) -> dict:
    """Counts and quartiles over several seeds' summaries, judged by cell identity: how many
    sampled the optimum (or a cell within seed noise of it) and when, how many converged and on
    what, how many end with the optimum as their greedy cell."""

    def iterations(key: str) -> list[int]:
        return [s[key] for s in summaries if s.get(key) is not None]

    hits = iterations("first_hit_iteration")
    near_hits = iterations("first_near_hit_iteration")
    convs = iterations("convergence_iteration")
    return {
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


def describe_aggregate(result: dict) -> str:
    """One sentence on :func:`aggregate_summaries`' result."""
    n = len(result["seeds"])
    hits, convs = result["found_optimum"], result["converged"]
    hit_when = f" (median iteration {result['first_hit_iteration']['median']})" if hits else ""
    conv_when = (f"; median iteration {result['convergence_iteration']['median']}, latest "
                 f"{result['max_convergence_iteration']}" if convs else "")
    return (
        f"{n} seeds: {hits} sampled the optimum{hit_when}, {result['found_near_optimum']} a cell "
        f"within seed noise of it; {convs} converged (lasting{conv_when}), "
        f"{result['converged_on_optimum']} on the optimum and {result['converged_near_optimum']} "
        f"within seed noise of it; {result['greedy_is_optimum']} end with the optimum as their "
        f"greedy cell, {result['greedy_near_optimum']} with a cell within seed noise of it."
    )


def aggregate(summaries: list[dict], out: Path) -> dict:
    """Counts and quartiles over several seeds, by cell identity (:func:`aggregate_summaries`):
    written to ``out/aggregate.json`` with the seeds' averaged reward figure ``out/rewards.png``,
    and printed as one sentence; returns the counts."""
    from agents.plotting import plot_runs
    from nas_env.table_builder import atomic_write_text

    result = aggregate_summaries(summaries)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "aggregate.json", json.dumps(json_safe(result), indent=2) + "\n")
    plot_runs([Path(s["run_dir"]) for s in summaries], out / "rewards.png", aggregate=True)
    print(f"{describe_aggregate(result)} Aggregate: {out}")
    return result
