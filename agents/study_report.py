"""Several seeds of each searcher, reported against random search (experiment 3's second round).

A study folder (``experiments/exp3_study.py``) holds one search folder per method and seed,
``{method}_seed{seed}/``, as ``nas-env search`` writes it (``evaluations.csv``, and
``summary.json`` once the search has finished), and the study's runner
(:mod:`agents.study_jobs`) adds ``attempts.csv`` there (the wall time of every run of that
search, interrupted ones included). This module turns the finished searches into the report:

- per searcher, the mean reward of the **last quarter** of each search's cells, and its
  difference from random search's **paired by seed** (seed ``s`` of a searcher against seed ``s``
  of random search), with a 95% Student-t interval over the seeds' differences
  (:func:`paired_interval`);
- distinct cells, the simulated training time (the summed ``training_time`` of each search's
  distinct cells) and the wall time (summed over every attempt);
- the ops chosen in the last quarter, pooled over seeds; the best cell of each search;
- a figure (:func:`plot_study`): per seed, each batch's mean reward and the best reward so far,
  with the band between the seeds' lowest and highest, one colour per searcher.

A tuning sweep (PPO settings on seeds that are not reported, under ``tuning/``) gets its own
table (:func:`tuning_table`), with what SB3 logged of each update (``ppo/progress.csv``): the
epochs each update ran before the KL limit stopped it, and its approximate KL.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from nas_env.protocols import get_protocol, is_score_protocol

from .search_report import ITERATION, op_counts, op_entropy, per_iteration, search_summary

LABELS = {"ppo": "PPO", "random": "random search", "evolution": "regularized evolution",
          "reinforce": "REINFORCE", "random_norepeat": "random search without repeats"}
"""A method's name as the report writes it."""


def reward_label(protocol) -> str:
    """What a search under ``protocol`` (a name or a JSON record of one, as ``nas-env search``
    records it) is rewarded by, in words, for the report and the figure's axis."""
    if is_score_protocol(protocol):
        return "score percentile"
    if get_protocol(protocol).reward_key == "score":
        return "late-loss score, 100 exp(-last training loss)"
    return "validation accuracy (%)"


def parse_search_name(name: str) -> tuple[str, int]:
    """``"ppo_seed3"`` -> ``("ppo", 3)``."""
    method, sep, seed = name.rpartition("_seed")
    if not sep or not seed.isdigit():
        raise ValueError(f"{name!r} is not a search folder's name ({{method}}_seed{{seed}})")
    return method, int(seed)


def load_study(folder: Path, methods=None, seeds=None) -> dict[tuple[str, int], pd.DataFrame]:
    """The evaluations of every finished search (one with ``summary.json``) directly under
    ``folder``, by ``(method, seed)``, in the order of ``methods`` (else PPO, random search,
    evolution, ...) and then of the seeds; ``methods`` and ``seeds`` keep only those."""
    searches = {}
    for summary in sorted(Path(folder).glob("*_seed*/summary.json")):
        try:
            method, seed = parse_search_name(summary.parent.name)
        except ValueError:
            continue
        if (methods is None or method in methods) and (seeds is None or seed in seeds):
            searches[method, seed] = pd.read_csv(summary.parent / "evaluations.csv")
    order = {m: i for i, m in enumerate([*(methods or []), *LABELS])}
    return dict(sorted(searches.items(), key=lambda item: (order.get(item[0][0], len(order)),
                                                           item[0])))


def last_quarter(values) -> np.ndarray:
    """The last quarter of ``values`` (at least one): the last 100 of 400 cells."""
    values = np.asarray(values)
    return values[len(values) - max(1, len(values) // 4):]


def paired_interval(differences, level: float = 0.95) -> dict:
    """The mean of per-seed ``differences`` with its Student-t interval (``n - 1`` degrees of
    freedom): ``n``, ``mean``, ``low``, ``high``; the ends are NaN for fewer than 2 seeds. It
    treats the seeds as independent draws of the search, which they are."""
    from scipy.stats import t

    d = np.asarray(differences, dtype=float)
    if len(d) == 0:
        return {"n": 0, "mean": np.nan, "low": np.nan, "high": np.nan}
    if len(d) < 2:
        return {"n": 1, "mean": float(d[0]), "low": np.nan, "high": np.nan}
    half = float(t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"n": len(d), "mean": float(d.mean()), "low": float(d.mean() - half),
            "high": float(d.mean() + half)}


def wall_seconds(run_dir: Path) -> float:
    """A search's wall time: summed over ``attempts.csv`` (every run of it the study made), else
    the last run's ``wall_seconds_this_run`` from ``summary.json``."""
    attempts = run_dir / "attempts.csv"
    if attempts.exists():
        return float(pd.read_csv(attempts)["seconds"].sum())
    summary = json.loads((run_dir / "summary.json").read_text())
    return float(summary.get("wall_seconds_this_run", np.nan))


def per_search_table(searches: dict, folder: Path) -> pd.DataFrame:
    """One row per search: cells, distinct cells, the mean reward of the first and the last
    quarter, the best reward and the evaluation that found it, the simulated training hours,
    the wall hours and the entropy of the ops chosen in the last quarter."""
    rows = []
    for (method, seed), frame in searches.items():
        summary = search_summary(frame, window=len(last_quarter(frame)))
        rows.append({"searcher": LABELS.get(method, method), "seed": seed,
                     "cells": summary["sampled"], "distinct": summary["distinct"],
                     "first quarter": summary["mean_first"], "last quarter": summary["mean_last"],
                     "best": summary["best_reward"], "best at": summary["best_at"],
                     "training h": summary["training_hours"],
                     "wall h": wall_seconds(folder / f"{method}_seed{seed}") / 3600,
                     "op entropy, last quarter": op_entropy(last_quarter(frame["arch"]))})
    return pd.DataFrame(rows)


def _quarter_means(searches: dict, method: str) -> dict[int, float]:
    return {seed: float(last_quarter(frame["reward"]).mean())
            for (m, seed), frame in searches.items() if m == method}


def paired_difference(mine: dict, theirs: dict) -> dict:
    """``mine[s] - theirs[s]`` (figures by seed) over the seeds both have, with
    :func:`paired_interval`; ``above``: how many differences are positive; ``seeds``: the
    seeds paired."""
    shared = sorted(set(mine) & set(theirs))
    differences = [mine[s] - theirs[s] for s in shared]
    return {**paired_interval(differences), "above": int(sum(d > 0 for d in differences)),
            "seeds": shared}


def against_random(searches: dict, method: str, baseline: str = "random") -> dict:
    """``method``'s last-quarter mean minus ``baseline``'s, per seed both ran
    (:func:`paired_difference`)."""
    return paired_difference(_quarter_means(searches, method), _quarter_means(searches, baseline))


def searcher_table(searches: dict, folder: Path, baseline: str = "random") -> pd.DataFrame:
    """One row per searcher: seeds, the last-quarter mean over seeds (and the seeds' standard
    deviation), the difference from ``baseline`` with its 95% paired t interval, distinct cells
    (mean over seeds), simulated training and wall hours (summed over seeds), and the best
    reward of any seed."""
    per_search = per_search_table(searches, folder)
    rows = []
    for method in dict.fromkeys(m for m, _ in searches):
        part = per_search[per_search["searcher"] == LABELS.get(method, method)]
        row = {"searcher": LABELS.get(method, method), "seeds": len(part),
               "last quarter (mean over seeds)": part["last quarter"].mean(),
               "sd over seeds": part["last quarter"].std(ddof=1) if len(part) > 1 else np.nan}
        if method != baseline and any(m == baseline for m, _ in searches):
            diff = against_random(searches, method, baseline)
            row.update({"minus random": diff["mean"], "95% low": diff["low"],
                        "95% high": diff["high"], "seeds above random": f"{diff['above']} of {diff['n']}"})
        else:
            row.update({"minus random": np.nan, "95% low": np.nan, "95% high": np.nan,
                        "seeds above random": ""})
        row.update({"distinct cells (mean)": part["distinct"].mean(),
                    "training h (sum)": part["training h"].sum(), "wall h (sum)": part["wall h"].sum(),
                    "best of any seed": part["best"].max()})
        rows.append(row)
    return pd.DataFrame(rows)


def op_table(searches: dict) -> pd.DataFrame:
    """The share (%) of each op among the ops chosen in the last quarter of every seed's search,
    both op slots of every block, per searcher (uniform choices: 12.5% each)."""
    columns = {}
    for method in dict.fromkeys(m for m, _ in searches):
        counts = sum(op_counts(last_quarter(frame["arch"]))
                     for (m, _), frame in searches.items() if m == method)
        columns[LABELS.get(method, method)] = 100 * counts / counts.sum()
    return pd.DataFrame(columns).rename_axis("op").reset_index()


def best_cell_table(searches: dict) -> pd.DataFrame:
    """The best cell of each search (the earliest, where several tie): its reward, the evaluation
    that found it, its size, and its string form."""
    rows = []
    for (method, seed), frame in searches.items():
        best = frame.loc[frame["reward"].idxmax()]
        rows.append({"searcher": LABELS.get(method, method), "seed": seed,
                     "reward": float(best["reward"]), "evaluation": int(best["evaluation"]),
                     "cell parameters": int(best["cell_parameters"]),
                     "cell": f"`{best['arch']}`".replace("|", "\\|")})
    return pd.DataFrame(rows)


def plot_study(searches: dict, out: Path, title: str, ylabel: str, batch: int = ITERATION) -> Path:
    """Two panels against the cells evaluated: each batch of ``batch`` cells' mean reward, and the
    best reward so far; per searcher a thin line per seed, the mean over seeds, and the band
    between the seeds' lowest and highest value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, method in enumerate(dict.fromkeys(m for m, _ in searches)):
        frames = [f for (m, _), f in searches.items() if m == method]
        color, label = f"C{i % 10}", LABELS.get(method, method)
        length = min(len(f) for f in frames)
        means = np.array([per_iteration(f["reward"].to_numpy()[:length], batch)["mean"]
                          for f in frames])
        bests = np.array([np.maximum.accumulate(f["reward"].to_numpy()[:length]) for f in frames])
        for ax, curves, x in ((axes[0], means, np.arange(1, means.shape[1] + 1) * batch),
                              (axes[1], bests, np.arange(1, length + 1))):
            if curves.shape[1] == 0:
                continue
            for curve in curves:
                ax.plot(x, curve, color=color, lw=0.6, alpha=0.5)
            ax.fill_between(x, curves.min(0), curves.max(0), color=color, alpha=0.15, lw=0)
            ax.plot(x, curves.mean(0), color=color, lw=1.8, marker="o" if ax is axes[0] else None,
                    markersize=3, label=f"{label} ({len(frames)} seed{'s' if len(frames) != 1 else ''})")
    axes[0].set_title(f"mean of each batch of {batch} cells", fontsize=10)
    axes[1].set_title("best so far", fontsize=10)
    for ax in axes:
        ax.set_xlabel("cells evaluated")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def markdown(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """``table`` as Markdown: floats to ``floatfmt`` (columns ending in ``h``, hours, to
    ``.3g``), integer columns as integers, NaN as an empty cell."""
    formats = tuple("g" if pd.api.types.is_integer_dtype(d) else ".3g" if str(c).endswith(" h")
                    or str(c).endswith("h (sum)") else floatfmt
                    for c, d in table.dtypes.items())
    cells = table.astype(object).where(table.notna(), None)
    return cells.to_markdown(index=False, floatfmt=formats, missingval="")


def update_log(run_dir: Path) -> pd.DataFrame:
    """One row per PPO update from ``ppo/progress.csv``: ``epochs`` (the epochs it ran; one that
    the KL limit stopped counts, so 2 means one gradient step), ``approx_kl`` and ``ent_coef``."""
    path = run_dir / "ppo" / "progress.csv"
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["update", "epochs", "approx_kl", "ent_coef"])
    log = pd.read_csv(path).dropna(subset=["train/n_updates"])
    done = log["train/n_updates"].to_numpy(dtype=int)
    return pd.DataFrame({"update": np.arange(1, len(done) + 1),
                         "epochs": np.diff(done, prepend=0),
                         "approx_kl": log["train/approx_kl"].to_numpy(),
                         "ent_coef": log.get("train/ent_coef", pd.Series(np.nan, log.index))
                         .to_numpy()})


def _sweep_means(searches: dict) -> dict:
    """Means over ``searches`` of their last-quarter reward, reward over all cells, distinct
    cells and op entropy of the last quarter."""
    frames = searches.values()
    return {"last quarter": np.mean([last_quarter(f["reward"]).mean() for f in frames]),
            "all cells": np.mean([f["reward"].mean() for f in frames]),
            "distinct": np.mean([f["arch"].nunique() for f in frames]),
            "op entropy, last quarter": np.mean([op_entropy(last_quarter(f["arch"]))
                                                 for f in frames])}


def tuning_table(folder: Path, settings: dict[str, dict]) -> pd.DataFrame:
    """One row per PPO setting of a sweep under ``folder`` (``{setting}/ppo_seed{s}/``, with
    random search's seeds in ``random/``): how it differs from the defaults, seeds finished, the
    last-quarter mean, its difference from random search's on the same seeds (95% paired t
    interval), the mean over all cells (how soon the setting got there), the distinct cells, the
    op entropy of the last quarter, and the median epochs and approximate KL of the first 5
    updates and of all. Random search has a row of its own, with its seeds and means."""
    from .ppo_sweep import ppo_config

    baseline, defaults, rows = load_study(folder / "random", methods=["random"]), ppo_config(), []
    for name, setting in settings.items():
        searches = load_study(folder / name, methods=["ppo"])
        changes = {k: v for k, v in setting.items() if k not in defaults or defaults[k] != v}
        row = {"setting": name, "changes": json.dumps(changes) if changes else "(defaults)",
               "seeds": len(searches)}
        if searches:
            logs = [update_log(folder / name / f"ppo_seed{seed}") for _, seed in searches]
            logs = pd.concat(logs) if logs else pd.DataFrame(columns=["update"])
            early = logs[logs["update"] <= 5]
            diff = against_random({**searches, **baseline}, "ppo")
            row.update({
                **_sweep_means(searches),
                "minus random": diff["mean"], "95% low": diff["low"], "95% high": diff["high"],
                "epochs, updates 1-5": early["epochs"].median(), "epochs, all": logs["epochs"].median(),
                "KL, updates 1-5": early["approx_kl"].median(), "KL, all": logs["approx_kl"].median()})
        rows.append(row)
    if baseline:
        rows.append({"setting": "random search", "changes": "", "seeds": len(baseline),
                     **_sweep_means(baseline)})
    return pd.DataFrame(rows)


SEARCHERS_NOTE = (
    "Last quarter: the mean reward of the last quarter of each search's cells. Minus random: a "
    "searcher's last-quarter mean minus random search's with the same seed, averaged over the "
    "seeds both ran, with a 95% Student-t interval (n - 1 degrees of freedom) over those per-seed "
    "differences. Training h: simulated training time of the distinct cells; wall h: every run "
    "of each search, replays included.")


def study_markdown(searches: dict, folder: Path, figure: str) -> str:
    """The report's sections for the finished ``searches`` of the study in ``folder``: the
    searchers against random search, every search, the ops of the last quarter, each search's
    best cell, and the figure (file name ``figure``, in ``folder``)."""
    return ("## Searchers\n\n" + SEARCHERS_NOTE + "\n\n" + markdown(searcher_table(searches, folder))
            + "\n\n## Every search\n\n" + markdown(per_search_table(searches, folder))
            + "\n\n## Ops chosen in the last quarter (% of both op slots of every block, seeds "
            "pooled; uniform: 12.5)\n\n" + markdown(op_table(searches), ".1f")
            + "\n\n## The best cell of each search\n\n" + markdown(best_cell_table(searches))
            + f"\n\n![curves]({figure})\n")


def sweep_markdown(folder: Path, settings: dict[str, dict], seeds) -> str:
    """The report of a PPO settings sweep under ``folder`` (:func:`tuning_table`)."""
    return ("## PPO settings on the tuning seeds " + ", ".join(map(str, seeds)) + "\n\n"
            "Last quarter: the mean reward of each search's last quarter of cells, mean over "
            "seeds; minus random: its difference from random search's on the same seed, mean over "
            "seeds with a 95% Student-t interval; all cells: the mean reward over all of each "
            "search's cells (higher: it got there sooner); distinct: distinct cells per search; "
            "epochs: per update, the epochs run before the KL "
            "limit stopped it (2: one gradient step); KL: SB3's approximate KL of the update's "
            "last epoch.\n\n" + markdown(tuning_table(folder, settings), ".3g") + "\n")
