"""How faithful, and how cheap, is a candidate reward? Rank figures and seconds per cell, printed.

A candidate is one of:

- a training protocol (``--protocol NAME`` or its fields as a JSON object), read by
  ``--signal val`` (its validation accuracy), ``--signal tse`` (minus its summed training loss,
  Ru et al.'s training speed estimate) or ``--signal late`` (minus the loss curve's last point:
  the mean training loss since the curve's previous point); the default is the protocol's own
  signal (``late`` for a ``late_loss`` protocol such as ``loss16k``, else ``val``); cells are
  trained through the live evaluator, so results go to the evaluation cache and a rerun costs
  lookups;
- a training-free score (``--score NAME``, a name of :data:`nas_env.zero_cost.SCORES`), a rank
  average of several (``--score synflow+naswot+jacob_cov``), or a :class:`~nas_env.fidelity.RankModel`
  over several (``--score model:synflow+naswot+zico``), fitted on the A_small table of
  ``--fit-on`` and reported on the others;
- a hybrid: a training protocol's signal rank-averaged with zero-cost scores
  (``--protocol cheap --with-scores synflow+naswot+jacob_cov``).

For each dataset of ``--dataset`` (unless only ``--large`` is given), the candidate ranks the 64
A_small cells against the shipped ``fast`` table's two-seed mean (:func:`nas_env.fidelity.rank_fidelity`: Spearman and Kendall with
bootstrap 95% intervals, Kendall over the best 16, overlap of the best 10%), and, where
``--large-reference`` names an A_large reference table, ranks its cells too. ``--large N`` times
the candidate on N random 5-block A_large cells (seeded, no cache) for each thread count of
``--threads``. Beside each table, the same figures between the ``fast`` table's own two training
seeds (``fast_seed0_vs_seed1``: how far the reference agrees with itself). With two or more
``--train-seeds``, a training candidate's own seeds are compared too, and
:func:`nas_env.fidelity.noise_free_spearman` estimates how it would rank with no seed noise on
either side (``noise_free``: the ceiling that averaging more of its seeds approaches).
``--out-dir`` exports a training protocol's A_small results as reward tables. The last line is
the candidate's row for ``docs/fidelity/index.md``.

    python experiments/bench_fidelity.py --protocol cheap --threads 1
    python experiments/bench_fidelity.py --protocol cheap --signal tse --threads 1
    python experiments/bench_fidelity.py --protocol cheap --train-seeds 0,1 --threads 1
    python experiments/bench_fidelity.py --score synflow --large 20 --threads 1,2
    python experiments/bench_fidelity.py --score model:synflow+naswot+zico --fit-on mnist
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nas_env.benchmark import RewardTable, table_path
from nas_env.cli import parse_int_list, parse_protocol, protocol_name
from nas_env.data import DATASETS, load_dataset
from nas_env.evaluators import LiveEvaluator
from nas_env.fidelity import (RankModel, noise_free_spearman, rank_average, rank_fidelity,
                              spearman_text)
from nas_env.spaces import LargeCell, SmallCell, parse_architecture
from nas_env.protocols import get_protocol
from nas_env.table_builder import export_cache_table
from nas_env.zero_cost import SCORES, score_cell

SIGNALS = ("val", "tse", "late")
SIGNAL_NAMES = {"val": "validation accuracy", "tse": "-TSE", "late": "late loss"}


def parse_score(text: str) -> tuple[str, list[str]]:
    """``("score" | "vote" | "model", [score names])`` from ``--score``'s text."""
    kind, _, names = text.rpartition(":")
    kind = kind or ("vote" if "+" in names else "score")
    parts = names.split("+")
    unknown = [p for p in parts if p not in SCORES]
    if kind not in ("score", "vote", "model") or unknown or (kind == "score" and len(parts) > 1):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME, NAME+NAME+... (a rank average) or model:NAME+NAME+...; "
            f"score names: {', '.join(SCORES)}")
    return kind, parts


def reference_of(dataset: str) -> np.ndarray:
    """The shipped fast table's two-seed mean validation accuracy, in A_small index order."""
    return RewardTable(table_path(dataset, "fast")).mean["validation_accuracy"]


def large_reference(path: Path) -> tuple[list[LargeCell], np.ndarray, np.ndarray]:
    """The cells of an A_large reference table, their mean validation accuracy over seeds and
    how many seeds each mean is over."""
    table = pd.read_csv(path)
    grouped = table.groupby("arch", sort=True)["validation_accuracy"]
    means = grouped.mean()
    return ([parse_architecture(a) for a in means.index], means.to_numpy(),
            grouped.count().to_numpy())


def large_reference_runs(path: Path) -> np.ndarray | None:
    """The reference table's validation accuracy per seed, shape ``(seeds, cells)`` with cells in
    :func:`large_reference`'s order; ``None`` unless every cell has the same two or more seeds."""
    runs = pd.read_csv(path).pivot(index="arch", columns="seed", values="validation_accuracy")
    runs = runs.sort_index()
    if runs.shape[1] < 2 or runs.isna().any().any():
        return None
    return runs.to_numpy().T


def noise_text(figures: dict) -> str:
    """One line for :func:`~nas_env.fidelity.noise_free_spearman`'s figures."""
    lo, hi = figures["noise_free_ci"]
    return (f"own seeds agree at {figures['candidate_agreement']:.2f} (reference's: "
            f"{figures['reference_agreement']:.2f}); Spearman of the seed means "
            f"{figures['spearman']:.2f}, noise-free {figures['noise_free']:.2f} [{lo:.2f}, {hi:.2f}]")


def signal_of(result: dict, signal: str) -> float:
    """A training result's value as a candidate: validation accuracy, minus the summed loss, or
    minus the loss curve's last point."""
    if signal == "val":
        return result["validation_accuracy"]
    return -result["train_loss_sum"] if signal == "tse" else -result["loss_curve"][-1][1]


class Candidate:
    """Values (higher = predicted better) and seconds for lists of cells, on one dataset."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._data: dict[str, object] = {}
        self._evaluators: dict[tuple, LiveEvaluator] = {}

    @property
    def name(self) -> str:
        args = self.args
        if args.score:
            kind, names = args.score
            return {"score": names[0], "vote": "vote(" + " + ".join(names) + ")",
                    "model": f"model(" + " + ".join(names) + f"; fitted on {args.fit_on})"}[kind]
        proto = protocol_name(args.protocol)
        signal = SIGNAL_NAMES[args.signal]
        seeds = ", ".join(map(str, args.train_seeds))
        if len(args.train_seeds) > 1:
            signal += f", mean of seeds {seeds}"
        elif list(args.train_seeds) != [0]:
            signal += f", seed {seeds}"
        name = f"{proto} ({signal})"
        if args.with_scores:
            name = f"vote({name} + " + " + ".join(args.with_scores[1]) + ")"
        return name

    def data(self, dataset: str):
        if dataset not in self._data:
            self._data[dataset] = load_dataset(dataset, self.args.data_root)
        return self._data[dataset]

    def scores(self, cells, dataset: str, threads: int | None = None) -> tuple[dict, list]:
        """Every score the candidate needs for ``cells``, and seconds per cell."""
        _, names = self.args.score or self.args.with_scores
        previous = torch.get_num_threads()
        torch.set_num_threads(threads or self.args.threads[0])
        try:
            values, seconds = {n: [] for n in names}, []
            for cell in cells:
                start = time.perf_counter()
                got = score_cell(cell, self.data(dataset), names, seed=self.args.score_seed,
                                 inits=self.args.inits, batch_size=self.args.batch_size,
                                 filters=tuple(self.args.filters), fc_units=self.args.fc_units)
                seconds.append(time.perf_counter() - start)
                for n in names:
                    values[n].append(got[n])
        finally:
            torch.set_num_threads(previous)
        return {n: np.array(v) for n, v in values.items()}, seconds

    def evaluator(self, space: str, dataset: str, threads: int, cache=True) -> LiveEvaluator:
        key = (space, dataset, threads, cache)
        if key not in self._evaluators:
            self._evaluators[key] = LiveEvaluator(
                space, dataset, self.args.protocol, data_root=self.args.data_root,
                cache=self.args.cache_path if cache else False, threads=threads,
                train_seeds=self.args.train_seeds)
        return self._evaluators[key]

    def values(self, cells, dataset: str, space: str, model: RankModel | None = None):
        """``(values, seconds per cell)``; for training, the seconds are each result's recorded
        ``training_time`` (what it cost when it was trained, cached or not)."""
        if self.args.score:
            kind, names = self.args.score
            scores, seconds = self.scores(cells, dataset)
            if kind == "score":
                return scores[names[0]], seconds
            if kind == "vote":
                return rank_average(scores), seconds
            return model.predict(scores), seconds
        evaluator = self.evaluator(space, dataset, self.args.threads[0])
        values, seconds = [], []
        for i, cell in enumerate(cells):
            result = evaluator.evaluate(cell)
            value = signal_of(result, self.args.signal)
            values.append(value)
            seconds.append(result["training_time"])
            print(f"{i:3d} {value:10.4f} {result['source']:8s} {result['training_time']:7.1f} s "
                  f"{cell}", flush=True)
        if self.args.with_scores:
            scores, score_seconds = self.scores(cells, dataset)
            seconds = [a + b for a, b in zip(seconds, score_seconds)]
            return rank_average({"training": np.array(values), **scores}), seconds
        return np.array(values), seconds

    def seed_runs(self, cells, dataset: str, space: str) -> np.ndarray | None:
        """A training candidate's signal for each of its training seeds, shape ``(seeds,
        cells)`` (cache lookups after :meth:`values`); ``None`` for fewer than two seeds or a
        candidate that is not a training protocol alone."""
        if self.args.score or self.args.with_scores or len(self.args.train_seeds) < 2:
            return None
        evaluator = self.evaluator(space, dataset, self.args.threads[0])
        return np.array([[signal_of(evaluator.evaluate_seed(cell, s), self.args.signal)
                          for cell in cells] for s in self.args.train_seeds])

    def time_large(self, cells, dataset: str, threads: int) -> list[float]:
        """Wall seconds per cell of evaluating ``cells`` afresh (no cache) on ``threads``."""
        if self.args.score:
            return self.scores(cells, dataset, threads)[1]
        evaluator = self.evaluator("large", dataset, threads, cache=False)
        evaluator.data  # load once, outside the timings
        seconds = []
        for cell in cells:
            start = time.perf_counter()
            evaluator.evaluate(cell)
            seconds.append(time.perf_counter() - start)
        if self.args.with_scores:
            seconds = [a + b for a, b in zip(seconds, self.scores(cells, dataset, threads)[1])]
        return seconds


def fit_model(candidate: Candidate, args: argparse.Namespace) -> RankModel | None:
    if not args.score or args.score[0] != "model":
        return None
    cells = list(SmallCell.all())
    scores, _ = candidate.scores(cells, args.fit_on)
    model = RankModel.fit(scores, reference_of(args.fit_on))
    print(f"fitted on the {args.fit_on} A_small table: {model}", flush=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--protocol", type=parse_protocol,
                      help="a training protocol: a name, or its fields as a JSON object")
    what.add_argument("--score", type=parse_score,
                      help="a training-free score: NAME, NAME+NAME (rank average) or model:NAME+NAME")
    parser.add_argument("--signal", choices=SIGNALS, default=None,
                        help="--protocol: rank by validation accuracy, minus the summed training "
                             "loss or minus the late training loss (default: the protocol's own)")
    parser.add_argument("--with-scores", type=parse_score, default=None,
                        help="--protocol: rank-average its signal with these zero-cost scores, "
                             "e.g. synflow+naswot+jacob_cov")
    parser.add_argument("--fit-on", choices=sorted(DATASETS), default="mnist",
                        help="--score model:...: the dataset whose A_small table the model is fitted on")
    parser.add_argument("--small", action="store_true",
                        help="rank the 64 A_small cells of each --dataset (done unless only --large is given)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="--protocol: also export its A_small results as reward tables here")
    parser.add_argument("--dataset", default="mnist,fashion_mnist",
                        help="A_small tables to rank against, comma-separated (default: both)")
    parser.add_argument("--large-reference", type=Path, default=None,
                        help="an A_large reference table (CSV: arch, seed, validation_accuracy) "
                             "on Fashion-MNIST to rank against")
    parser.add_argument("--large", type=int, default=0, help="time this many random 5-block A_large cells")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random A_large cells (default: 0)")
    parser.add_argument("--threads", type=parse_int_list, default=[1],
                        help="torch threads; --large times each count given, e.g. 1,2 (default: 1)")
    parser.add_argument("--train-seeds", type=parse_int_list, default=[0],
                        help="--protocol: training seeds per cell, averaged (default: 0)")
    parser.add_argument("--score-seed", type=int, default=0, help="--score: initialisation seed (default: 0)")
    parser.add_argument("--inits", type=int, default=2, help="--score: initialisations averaged (default: 2)")
    parser.add_argument("--batch-size", type=int, default=64, help="--score: images scored (default: 64)")
    parser.add_argument("--filters", type=parse_int_list, default=[16, 32],
                        help="--score: the scored net's two filter counts (default: 16,32)")
    parser.add_argument("--fc-units", type=int, default=256,
                        help="--score: the scored net's classifier width (default: 256)")
    parser.add_argument("--data-root", default=None, help="dataset root (default: $NAS_ENV_DATA, else a per-user cache)")
    parser.add_argument("--cache-path", default=None, help="--protocol: evaluation cache (default: the user cache)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    datasets = [d for d in args.dataset.split(",") if d]
    for d in datasets:
        if d not in DATASETS:
            parser.error(f"--dataset {d!r}; allowed: {', '.join(DATASETS)}")

    if args.signal is None:
        own = args.protocol is not None and get_protocol(args.protocol).signal == "late_loss"
        args.signal = "late" if own else "val"
    candidate = Candidate(args)
    model = fit_model(candidate, args)
    kind = "training-free" if args.score else "hybrid" if args.with_scores else "training"
    out: dict = {"candidate": candidate.name, "kind": kind, "small": {}, "large_reference": None,
                 "model": model.as_dict() if model else None}
    small_seconds = []
    for dataset in datasets if args.small or not args.large else []:
        values, seconds = candidate.values(list(SmallCell.all()), dataset, "small", model)
        small_seconds += seconds
        figures = rank_fidelity(values, reference_of(dataset))
        figures["fitted_here"] = model is not None and dataset == args.fit_on
        out["small"][dataset] = figures
        seeds = RewardTable(table_path(dataset, "fast")).per_seed["validation_accuracy"]
        out.setdefault("fast_seed0_vs_seed1", {})[dataset] = rank_fidelity(seeds[:, 0], seeds[:, 1])
        runs = candidate.seed_runs(list(SmallCell.all()), dataset, "small")
        if runs is not None:
            figures["noise"] = noise_free_spearman(runs, seeds.T)
            print(f"A_small {dataset}, seed noise: {noise_text(figures['noise'])}")
        print(f"A_small {dataset}: {json.dumps(figures)}", flush=True)
        if args.out_dir is not None and args.protocol is not None:
            evaluator = candidate.evaluator("small", dataset, args.threads[0])
            print(f"table: {export_cache_table(evaluator.cache, dataset, evaluator.protocol, args.out_dir)}")
    out["seconds_per_small_cell"] = float(np.median(small_seconds)) if small_seconds else None
    if args.large_reference is not None:
        cells, reference, seeds = large_reference(args.large_reference)
        values, _ = candidate.values(cells, "fashion_mnist", "large", model)
        # A set still being built may hold fewer than 16 cells: then its best 16 are all of them.
        out["large_reference"] = rank_fidelity(values, reference, top=min(16, len(cells)))
        # Cell by cell, so that figures over a part of the set can be taken later
        # (experiments/large_default.py).
        out["large_reference_cells"] = [
            {"arch": cell.key, "reference": float(r), "seeds": int(n), "value": float(v)}
            for cell, r, n, v in zip(cells, reference, seeds, values)]
        runs, reference_runs = (candidate.seed_runs(cells, "fashion_mnist", "large"),
                                large_reference_runs(args.large_reference))
        if runs is not None and reference_runs is not None:
            out["large_reference"]["noise"] = noise_free_spearman(runs, reference_runs)
            print(f"A_large reference, seed noise: {noise_text(out['large_reference']['noise'])}")
        print(f"A_large reference ({len(cells)} cells): {json.dumps(out['large_reference'])}")
    out["seconds_per_large_cell"] = {}
    if args.large:
        rng = np.random.default_rng(args.seed)
        nvec = LargeCell.action_nvec(5)
        cells = [LargeCell.from_action([int(rng.integers(n)) for n in nvec])
                 for _ in range(args.large)]
        for threads in args.threads:
            seconds = candidate.time_large(cells, datasets[-1], threads)
            q = np.percentile(seconds, [0, 50, 100])
            out["seconds_per_large_cell"][threads] = {"min": q[0], "median": q[1], "max": q[2],
                                                      "mean": statistics.mean(seconds)}
            print(f"A_large, {threads} thread(s): median {q[1]:.2f} s (min {q[0]:.2f}, max {q[2]:.2f})")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")

    small = out["small"]
    large_s = out["seconds_per_large_cell"]
    row = [candidate.name,
           spearman_text(small.get("mnist")), spearman_text(small.get("fashion_mnist")),
           " / ".join(f"{small[d]['kendall_top16']:.2f}" if d in small else "n/a"
                      for d in ("mnist", "fashion_mnist")),
           " / ".join(f"{small[d]['top10pct_overlap']:.2f}" if d in small else "n/a"
                      for d in ("mnist", "fashion_mnist")),
           spearman_text(out["large_reference"]),
           f"{out['seconds_per_small_cell']:.2f}" if out["seconds_per_small_cell"] else "n/a",
           " / ".join(f"{large_s[t]['median']:.2f}" for t in sorted(large_s)) or "n/a"]
    print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
