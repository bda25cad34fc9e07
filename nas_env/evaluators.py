"""Evaluators: an architecture in, an :class:`~nas_env.results.EvalResult` out.

The envs do not know where a result comes from. They hold an :class:`Evaluator` and call
``evaluator.evaluate(cell, rng)``; two implementations answer:

- :class:`TableEvaluator` looks the cell up in a :class:`~nas_env.tables.reward_table.RewardTable`
  (A_small only), in microseconds, optionally at a lower ``fidelity`` (the validation accuracy at an
  earlier checkpoint of the recorded curve, charged that fraction of the training time, as
  NAS-Bench-201's ``simulate_train_eval`` does).
- :class:`LiveEvaluator` trains the cell's child network with :func:`~nas_env.training.train_child`
  under a named protocol, on a dataset loaded once on first use, and stores every finished run in
  an :class:`~nas_env.cache.EvaluationCache`, so a known cell costs a lookup.

Both give each architecture's sizes without evaluating it (:meth:`Evaluator.size`), which is how an
env applies a parameter budget before paying for any training.

    from nas_env.evaluators import LiveEvaluator
    from nas_env.spaces import LargeCell

    evaluator = LiveEvaluator("large", dataset="mnist", protocol="cheap")
    result = evaluator.evaluate(LargeCell.from_action([0, 0, 1, 5] * 1))
    result["validation_accuracy"], result["source"]      # (..., "training"); again: "cache"
"""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from .keywords import check_seed_mode
from .tables.files import load_table, table_path as shipped_table_path
from .tables.reward_table import RewardTable
from .results import NOT_TRAINED, EvalResult
from .run_checkpoint import CHECKPOINT_EVERY
from .spaces import LargeCell, SmallCell

IN_PROGRESS_POLL_SECONDS = 2.0
"""How often a live evaluator looks again for a run another process is training."""
SIZE_METRICS = ("trainable_parameters", "cell_parameters", "flops")
"""The results an architecture determines before any training (the paper-size network's)."""
SPACES = ("small", "large")
LIVE_KEYWORDS = ("data_root", "cache_path", "train_seeds", "device", "threads", "measure_latency",
                 "backend", "workers", "checkpoint_dir", "checkpoint_every")
"""The env keywords that configure the live evaluator an env makes (``None``: not given)."""


def _space_of(cell: SmallCell | LargeCell) -> str:
    return "small" if isinstance(cell, SmallCell) else "large"


def _unevaluated(cell: SmallCell | LargeCell, sizes: dict, evaluator: "Evaluator", *,
                 seed: int | None, failure: str | None, source: str) -> EvalResult:
    """A record with the cell's sizes, NaN accuracies and no training time."""
    return EvalResult(
        arch=cell.to_string(), arch_key=cell.key,
        arch_index=cell.index if isinstance(cell, SmallCell) else None,
        seed=seed, num_seeds=0 if seed is None else 1, validation_accuracy=math.nan,
        test_accuracy=math.nan, val_curve=[], train_loss_sum=None, loss_curve=[], score=None,
        proxy_scores=None,
        training_time=0.0, evaluation_time=0.0,
        **{k: sizes[k] for k in SIZE_METRICS}, latency_ms=None, diverged=False,
        failure=failure, source=source, dataset=evaluator.dataset, protocol=evaluator.protocol,
        fidelity=0.0 if seed is None else 1.0, device="", precision="", **NOT_TRAINED,
    )


def skipped_result(cell: SmallCell | LargeCell, sizes: dict, evaluator: "Evaluator") -> EvalResult:
    """The record of a cell that was not evaluated because its size is over the budget: its
    sizes, NaN accuracies, no training time, ``source="skipped"``."""
    return _unevaluated(cell, sizes, evaluator, seed=None, failure=None, source="skipped")


def failed_result(cell: SmallCell | LargeCell, sizes: dict, reason: str, seed: int,
                  evaluator: "Evaluator") -> EvalResult:
    """The record of an evaluation that could not finish (e.g. out of memory): ``failure=reason``."""
    return _unevaluated(cell, sizes, evaluator, seed=seed, failure=reason, source="training")


def mean_result(results: Sequence[EvalResult]) -> EvalResult:
    """One record for several training seeds of one cell: accuracies, times and latency averaged,
    ``seed=None``, ``diverged`` if any seed diverged, the first failure if any failed."""
    first = results[0]
    if len(results) == 1:
        return first
    curves = [dict(map(tuple, r["val_curve"])) for r in results]
    epochs = sorted(set.intersection(*(set(c) for c in curves)))
    merged = dict(first)
    merged.update({k: float(np.mean([r[k] for r in results]))
                   for k in ("validation_accuracy", "test_accuracy", "training_time")})
    latencies = [r["latency_ms"] for r in results]
    merged["latency_ms"] = None if None in latencies else float(np.mean(latencies))
    losses = [r.get("train_loss_sum") for r in results]
    merged["train_loss_sum"] = None if None in losses else float(np.mean(losses))
    loss_curves = [dict(map(tuple, r["loss_curve"])) for r in results]
    loss_epochs = sorted(set.intersection(*(set(c) for c in loss_curves)))
    times = [r.get("evaluation_time") for r in results]
    merged["evaluation_time"] = None if None in times else float(np.mean(times))
    merged.update(
        seed=None, num_seeds=len(results),
        val_curve=[[e, float(np.mean([c[e] for c in curves]))] for e in epochs],
        loss_curve=[[e, float(np.mean([c[e] for c in loss_curves]))] for e in loss_epochs],
        diverged=any(r["diverged"] for r in results),
        failure=next((r["failure"] for r in results if r["failure"]), None),
        source="cache" if all(r["source"] == "cache" for r in results) else "training",
    )
    return merged


class Evaluator(ABC):
    """Evaluates architectures of one search space; the interface the envs use.

    :attr space: ``"small"`` or ``"large"``.
    :attr dataset: the dataset the results are on.
    :attr protocol: the training protocol's name.
    :attr table: the reward table behind the results, or ``None`` when there is none.
    :attr reward_key: the result key the envs' reward is computed from: ``"validation_accuracy"``,
        or ``"score"`` for a training-free evaluator.
    """

    space: str
    dataset: str | None
    protocol: str | None
    table: RewardTable | None = None
    reward_key: str = "validation_accuracy"
    """The result key an env's reward is computed from."""

    @abstractmethod
    def evaluate(self, cell: SmallCell | LargeCell,
                 rng: np.random.Generator | None = None) -> EvalResult:
        """The result of ``cell``; ``rng`` picks a training seed where the seed mode samples."""

    @abstractmethod
    def size(self, cell: SmallCell | LargeCell) -> dict:
        """``trainable_parameters``, ``cell_parameters`` and ``flops`` of ``cell``, without
        evaluating it."""

    def evaluate_batch(self, cells: Sequence[SmallCell | LargeCell],
                       rngs: Sequence[np.random.Generator | None] | None = None) -> list[EvalResult]:
        """The results of ``cells``, in order; ``rngs[i]`` is ``evaluate``'s ``rng`` for cell
        ``i``. This implementation evaluates one after another; a live evaluator trains the
        batch's distinct uncached cells through its backend."""
        rngs = list(rngs) if rngs is not None else [None] * len(cells)
        return [self.evaluate(cell, rng) for cell, rng in zip(cells, rngs)]

    def best(self, reward) -> dict | None:
        """The best cell under ``reward`` (a :class:`~nas_env.rewards.Reward`) where the evaluator
        knows it (a table), else ``None``."""
        return None

    def check_metric(self, metric: str) -> None:
        """Raise if results will not hold ``metric`` (a budget metric)."""

    def close(self) -> None:
        """Release what the evaluator holds (files, data)."""


class TableEvaluator(Evaluator):
    """Results looked up in an A_small reward table.

    :param table: the table.
    :param seed_mode: ``"mean"`` over the table's training seeds or ``"sample"``: one seed's row,
        drawn with the ``rng`` passed to :meth:`evaluate`.
    :param fidelity: the fraction of the protocol's training to report: the validation accuracy at
        the matching checkpoint of the recorded curve (``table.checkpoints`` divided by the
        protocol's epochs, e.g. 0.25, 0.5, 0.75 or 1.0 for the ``fast`` table), charged that
        fraction of the training time. The test accuracy stays the final one.
    """

    space = "small"

    def __init__(self, table: RewardTable, seed_mode: str = "mean", fidelity: float = 1.0) -> None:
        self.table = table
        self.seed_mode = check_seed_mode(seed_mode)
        meta = table.meta or {}
        self.dataset = meta.get("dataset")
        self.protocol = (meta.get("protocol") or {}).get("name")
        epochs = int((meta.get("protocol") or {}).get("epochs") or math.ceil(table.checkpoints[-1]))
        fractions = [c / epochs for c in table.checkpoints]
        matches = [c for c, f in zip(table.checkpoints, fractions) if abs(f - fidelity) < 0.01]
        if not matches:
            raise ValueError(
                f"fidelity={fidelity!r} is not a checkpoint of {table.path}; allowed: "
                + ", ".join(f"{round(f, 2):g}" for f in fractions)
            )
        self.fidelity = float(fidelity)
        self._checkpoint = matches[0]
        self._full = fidelity >= 1.0 - 0.01

    def evaluate(self, cell: SmallCell, rng: np.random.Generator | None = None) -> EvalResult:
        result = self.table.lookup(cell.index, self.seed_mode, rng)
        if not self._full:
            result["validation_accuracy"] = dict(result["val_curve"])[self._checkpoint]
            result["training_time"] *= self.fidelity
            result["fidelity"] = self.fidelity
        return result

    def size(self, cell: SmallCell) -> dict:
        record = self.table.lookup(cell.index)
        return {k: record[k] for k in SIZE_METRICS}

    def best(self, reward) -> dict:
        return self.table.best(reward)

    def check_metric(self, metric: str) -> None:
        self.table.check_metric(metric)


class LiveEvaluator(Evaluator):
    """Results of training each cell's child network, stored in an evaluation cache.

    :param space: ``"small"`` (A_small) or ``"large"`` (A_large).
    :param dataset: ``"mnist"`` or ``"fashion_mnist"``; loaded on the first training, kept in memory.
    :param protocol: a name from :data:`nas_env.training.PROTOCOLS` or a
        :class:`~nas_env.training.Protocol`.
    :param data_root: the dataset root (default: ``$NAS_ENV_DATA``, else the per-user cache).
    :param train_seeds: the training seeds a cell is trained with.
    :param seed_mode: ``"mean"``: train every seed of ``train_seeds`` and average; ``"sample"``:
        train one, drawn with the ``rng`` passed to :meth:`evaluate`.
    :param cache: an :class:`~nas_env.cache.EvaluationCache`, a path to one, ``None`` for the
        default file under the user cache directory, or ``False`` for no cache.
    :param device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    :param precision: ``"auto"`` (the protocol's), ``"bf16"`` or ``"fp32"``.
    :param threads: torch CPU threads while training (restored after); ``None``: unchanged
        (inline), one per worker (``process``), the task's ``num_cpus`` (``ray``).
    :param measure_latency: time CPU inference of every trained cell on a fresh paper-size net
        (35 single-image forward passes); off by default, then ``latency_ms`` is ``None``.
    :param backend: who trains a batch: ``"inline"`` (one at a time, here), ``"process"`` (a pool
        on this machine), ``"ray"`` or an :class:`~nas_env.parallel.EvalBackend`
        (see :mod:`nas_env.parallel`).
    :param workers: jobs at once for ``"process"`` (default 2) and ``"ray"`` (CPUs of a local Ray).
    :param checkpoint_dir: where a training run saves its state every ``checkpoint_every``
        seconds, so an interrupted one resumes (see :func:`~nas_env.training.train_child`);
        ``None``: no checkpoints.
    :param checkpoint_every: seconds of training between two saves.

    :meth:`evaluate_batch` answers what the cache holds, trains each distinct remaining (cell,
    seed) once however often the batch repeats it, stores each result the moment it finishes,
    and returns the results in the batch's order. A repeat within the batch is reported with
    ``source="cache"``, like a repeat across batches.

    A run that diverges is a finished result (``diverged=True``, ``failure="diverged"``) and is
    cached like any other; one that runs out of GPU memory (``failure="out_of_memory: ..."``) or
    whose worker died too often (``"worker_lost: ..."``) is not cached, since a later run may
    finish it.
    """

    def __init__(
        self,
        space: str = "large",
        dataset: str = "mnist",
        protocol="cheap",
        data_root: str | os.PathLike | None = None,
        train_seeds: Sequence[int] = (0,),
        seed_mode: str = "mean",
        cache=None,
        device: str = "auto",
        precision: str = "auto",
        threads: int | None = None,
        measure_latency: bool = False,
        backend="inline",
        workers: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: float = CHECKPOINT_EVERY,
    ) -> None:
        from .cache import open_cache
        from .data import DATASETS
        from .parallel import TrainingSpec, make_backend
        from .training import get_protocol

        if space not in SPACES:
            raise ValueError(f"space={space!r}; allowed: {', '.join(SPACES)}")
        if dataset not in DATASETS:
            raise ValueError(f"dataset={dataset!r}; allowed: {', '.join(DATASETS)}")
        self.space = space
        self.dataset = dataset
        self._protocol = get_protocol(protocol)
        self.protocol = self._protocol.name
        self.data_root = data_root
        self.train_seeds = [int(s) for s in train_seeds]
        if not self.train_seeds:
            raise ValueError("train_seeds is empty; give at least one training seed")
        self.seed_mode = check_seed_mode(seed_mode)
        self.backend = make_backend(backend, workers)
        self.cache = open_cache(cache)
        self.device, self.precision, self.threads = device, precision, threads
        self.measure_latency = measure_latency
        self._data = None
        self._data_record: dict | None = None
        self._asked: dict[str, SmallCell | LargeCell] = {}
        self._sizes: dict[str, dict] = {}
        self.backend.bind(
            TrainingSpec(dataset, None if data_root is None else str(data_root),
                         self._protocol.as_dict(), device, precision, threads, measure_latency,
                         None if checkpoint_dir is None else str(checkpoint_dir),
                         float(checkpoint_every)),
            lambda: self.data)

    @property
    def data(self):
        """The dataset's splits, loaded on first use."""
        if self._data is None:
            from .data import load_dataset

            self._data = load_dataset(self.dataset, self.data_root)
        return self._data

    def identity(self, cell: SmallCell | LargeCell, seed: int) -> dict:
        """The run identity (:func:`nas_env.identity.run_identity`) under which this evaluator
        looks up and stores ``cell``'s training with ``seed``: the dataset's files are
        fingerprinted (once) without loading them."""
        from .data import VALIDATION_FRACTION, known_data_record
        from .identity import run_identity, split_sizes

        if self._data_record is None:
            self._data_record = (self._data.record() if self._data is not None else
                                 known_data_record(self.dataset, self.data_root, lambda: self.data))
        precision = self._protocol.precision if self.precision == "auto" else self.precision
        return run_identity(
            space=self.space, arch_key=cell.key, dataset=self.dataset, data=self._data_record,
            split_sizes=split_sizes(self._data_record, self._protocol, VALIDATION_FRACTION),
            protocol=self._protocol, seed=seed, precision=precision,
            device_type=self.backend.device_type(self.device))

    def _check_space(self, cell) -> None:
        if _space_of(cell) != self.space:
            raise ValueError(f"{cell} is an A_{_space_of(cell)} cell; this evaluator's space is "
                             f"A_{self.space}")

    def size(self, cell: SmallCell | LargeCell) -> dict:
        self._check_space(cell)
        if cell.key not in self._sizes:
            from .child_net import network_size

            self._sizes[cell.key] = network_size(cell)
        return self._sizes[cell.key]

    def check_metric(self, metric: str) -> None:
        if metric == "latency_ms" and not self.measure_latency:
            raise ValueError("a latency budget needs measure_latency=True on the live evaluator")

    def evaluate(self, cell: SmallCell | LargeCell,
                 rng: np.random.Generator | None = None) -> EvalResult:
        return self.evaluate_batch([cell], [rng])[0]

    def evaluate_seed(self, cell: SmallCell | LargeCell, seed: int) -> EvalResult:
        """One training seed's result (any seed, not only ``train_seeds``): cached, else trained
        and stored."""
        self._check_space(cell)
        return dict(self._results([(cell, int(seed))])[(cell.key, int(seed))], arch=cell.to_string())

    def cached_result(self, cell: SmallCell | LargeCell, seed: int) -> EvalResult | None:
        """One training seed's result if the cache holds it, else ``None``; trains nothing."""
        self._check_space(cell)
        if self.cache is None:
            return None
        found = self.cache.get(self.identity(cell, int(seed)))
        return None if found is None else dict(found, arch=cell.to_string())

    def _seeds(self, rng: np.random.Generator | None) -> list[int]:
        if self.seed_mode == "mean":
            return self.train_seeds
        rng = rng if rng is not None else np.random.default_rng()
        return [self.train_seeds[int(rng.random() * len(self.train_seeds))]]

    def evaluate_batch(self, cells: Sequence[SmallCell | LargeCell],
                       rngs: Sequence[np.random.Generator | None] | None = None) -> list[EvalResult]:
        for cell in cells:
            self._check_space(cell)
        rngs = list(rngs) if rngs is not None else [None] * len(cells)
        wanted = [(cell, self._seeds(rng)) for cell, rng in zip(cells, rngs)]
        results = self._results([(cell, s) for cell, seeds in wanted for s in seeds])
        served: set[tuple[str, int]] = set()
        batch = []
        for cell, seeds in wanted:
            per_seed = []
            for seed in seeds:
                result = dict(results[(cell.key, seed)], arch=cell.to_string())
                if (cell.key, seed) in served and result["source"] == "training":
                    result["source"] = "cache"  # trained once for this batch, served twice
                served.add((cell.key, seed))
                per_seed.append(result)
            batch.append(mean_result(per_seed))
        return batch

    def _results(self, pairs: list) -> dict[tuple[str, int], EvalResult]:
        """The result of every distinct (cell, seed) in ``pairs``: cached, else trained by the
        backend and stored in the cache as each finishes. A run that another process is training
        into the same checkpoint folder (a second search on the same cache) is waited for: its
        row is read from the cache once it is there, or the run is taken over if that process
        stopped without finishing it."""
        results = self._train_missing(pairs)
        while any(isinstance(r, str) for r in results.values()):
            time.sleep(IN_PROGRESS_POLL_SECONDS)
            waiting = [(self._asked[key], seed) for (key, seed), r in results.items()
                       if isinstance(r, str)]
            results.update(self._train_missing(waiting))
        return results

    def _train_missing(self, pairs: list) -> dict[tuple[str, int], EvalResult | str]:
        """One pass of :meth:`_results`; a run held by another process gives its reason (a
        string) instead of a result."""
        from .parallel import IN_PROGRESS, Job

        distinct: dict[tuple[str, int], tuple] = {}
        for cell, seed in pairs:
            distinct.setdefault((cell.key, seed), (cell, seed))
            self._asked[cell.key] = cell
        results: dict[tuple[str, int], EvalResult] = {}
        jobs, keys = [], []
        for key, (cell, seed) in distinct.items():
            identity = self.identity(cell, seed) if self.cache is not None else None
            cached = self.cache.get(identity) if identity is not None else None
            if cached is not None:
                if self.measure_latency and cached["latency_ms"] is None:
                    cached = self._complete_latency(cell, identity, cached)
                results[key] = cached
            else:
                # Equivalent cells share a key; each trains as the canonical one, so a result
                # does not depend on which of them was asked first.
                jobs.append(Job(cell.canonical(), seed))
                keys.append(key)
        if jobs:
            outcomes = self.backend.run(jobs)
            try:
                for i, outcome in outcomes:
                    job = jobs[i]
                    if isinstance(outcome, str) and outcome.startswith(IN_PROGRESS):
                        results[keys[i]] = outcome  # another process trains it: wait for it
                        continue
                    if isinstance(outcome, str):
                        outcome = failed_result(job.cell, self.size(job.cell), outcome, job.seed,
                                                self)
                    elif self.cache is not None:
                        # Stored under the conditions it ran under (a worker may have had a GPU).
                        self.cache.put(dict(self.identity(job.cell, job.seed),
                                            precision=outcome["precision"],
                                            device_type=outcome["device"]), outcome)
                    results[keys[i]] = outcome
            finally:
                outcomes.close()  # on an interrupt: cancel what did not finish
        return results

    def _complete_latency(self, cell, identity: dict, cached: EvalResult) -> EvalResult:
        """A cached row stored without latency, with its latency measured now (no training
        needed: latency does not depend on the weights) and stored in its row."""
        from .child_net import ChildNet
        from .training import measure_latency_ms

        latency = measure_latency_ms(ChildNet(cell.canonical()), (1, 1, 28, 28))
        self.cache.complete(identity, latency_ms=latency)
        return dict(cached, latency_ms=latency)

    def close(self) -> None:
        self.backend.close()
        if self.cache is not None:
            self.cache.close()
        self._data = None


def make_evaluator(
    space: str,
    evaluator,
    dataset: str,
    protocol,
    table_path=None,
    seed_mode: str = "mean",
    fidelity: float = 1.0,
    allow_partial_table: bool = False,
    **live_keywords,
) -> Evaluator:
    """The evaluator an env's keywords name: ``"table"``, ``"live"`` or an :class:`Evaluator`.

    ``live_keywords`` are the envs' live-only keywords (:data:`LIVE_KEYWORDS`); ``None`` means
    not given.
    """
    given = {k: v for k, v in live_keywords.items() if v is not None}
    if isinstance(evaluator, Evaluator):
        if evaluator.space != space:
            raise ValueError(f"the evaluator's space is A_{evaluator.space}; this env searches A_{space}")
        if given:
            raise ValueError(f"{', '.join(sorted(given))} configure a live evaluator the env "
                             "makes; set them on the Evaluator passed instead")
        return evaluator
    from .protocols import is_score_protocol

    if is_score_protocol(protocol):
        if evaluator != "live":
            raise ValueError(f"protocol {getattr(protocol, 'name', protocol)!r} is training-free; "
                             "it has no reward table: pass evaluator='live' with it")
        from .score_evaluator import get_score_protocol

        allowed = {"data_root", "cache_path", "threads"}
        if set(given) - allowed and get_score_protocol(protocol).training is None:
            raise ValueError(f"{', '.join(sorted(set(given) - allowed))} configure training; a "
                             f"training-free protocol takes only {', '.join(sorted(allowed))}")
        if table_path is not None or fidelity != 1.0:
            raise ValueError("table_path and fidelity apply to reward tables, not to a "
                             "training-free protocol")
        from .score_evaluator import ScoreEvaluator

        if "cache_path" in given:
            given["cache"] = given.pop("cache_path")
        return ScoreEvaluator(space, dataset, protocol, seed_mode=seed_mode, **given) \
            if get_score_protocol(protocol).training is not None \
            else ScoreEvaluator(space, dataset, protocol, **given)
    if evaluator == "live":
        if table_path is not None:
            raise ValueError("table_path names a reward table, which evaluator='live' does not "
                             "use; pass evaluator='table' with it, or drop it")
        if fidelity != 1.0:
            raise ValueError("fidelity applies to reward tables; a live evaluator's cost is chosen "
                             "by its protocol (e.g. protocol='cheap')")
        if "cache_path" in given:
            given["cache"] = given.pop("cache_path")
        return LiveEvaluator(space, dataset, protocol, seed_mode=seed_mode, **given)
    if evaluator != "table":
        raise ValueError(f"evaluator={evaluator!r}; allowed: 'table', 'live' or an Evaluator")
    if space != "small":
        raise ValueError("reward tables exist for A_small only; A_large needs evaluator='live'")
    if given:
        raise ValueError(f"{', '.join(sorted(given))} apply to evaluator='live' only")
    if table_path is None:
        try:
            table_path = shipped_table_path(dataset, protocol)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{err} To train each cell live instead, pass evaluator='live' (results are "
                "cached; see docs/live-search.md)."
            ) from None
    table = load_table(table_path, allow_partial=allow_partial_table)
    _check_variant(table, dataset, protocol)
    return TableEvaluator(table, seed_mode, fidelity)


def _check_variant(table: RewardTable, dataset: str, protocol: str) -> None:
    meta = table.meta or {}
    recorded = {"dataset": meta.get("dataset"), "protocol": (meta.get("protocol") or {}).get("name")}
    for key, asked in (("dataset", dataset), ("protocol", protocol)):
        if recorded[key] is not None and recorded[key] != asked:
            raise ValueError(
                f"reward table {table.path} records {key}={recorded[key]!r} but the env "
                f"was made with {key}={asked!r}; pass {key}={recorded[key]!r} or another table."
            )
