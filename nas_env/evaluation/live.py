"""Results of training each cell's child network, stored in an evaluation cache."""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

import numpy as np

from ..keywords import check_seed_mode
from ..results import EvalResult
from ..run_checkpoint import CHECKPOINT_EVERY
from ..spaces import LargeCell, SmallCell
from .interface import SPACES, Evaluator, space_of
from .records import failed_result, mean_result

IN_PROGRESS_POLL_SECONDS = 2.0
"""How often a live evaluator looks again for a run another process is training."""


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
        on this machine), ``"ray"`` or an :class:`~nas_env.backends.base.EvalBackend`
        (see :mod:`nas_env.backends`).
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
        from ..cache import open_cache
        from ..data import DATASETS
        from ..backends.factory import make_backend
        from ..backends.jobs import TrainingSpec
        from ..training import get_protocol

        if space not in SPACES:
            raise ValueError(f"space={space!r}; allowed: {', '.join(SPACES)}")
        if dataset not in DATASETS:
            raise ValueError(f"dataset={dataset!r}; allowed: {', '.join(DATASETS)}")
        self.space = space
        self.dataset = dataset
        self._protocol = get_protocol(protocol)
        self.protocol = self._protocol.name
        self.reward_key = self._protocol.reward_key
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
            from ..data import load_dataset

            self._data = load_dataset(self.dataset, self.data_root)
        return self._data

    def identity(self, cell: SmallCell | LargeCell, seed: int) -> dict:
        """The run identity (:func:`nas_env.identity.run_identity`) under which this evaluator
        looks up and stores ``cell``'s training with ``seed``: the dataset's files are
        fingerprinted (once) without loading them."""
        from ..data import VALIDATION_FRACTION, known_data_record
        from ..identity import run_identity, split_sizes

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
        if space_of(cell) != self.space:
            raise ValueError(f"{cell} is an A_{space_of(cell)} cell; this evaluator's space is "
                             f"A_{self.space}")

    def size(self, cell: SmallCell | LargeCell) -> dict:
        self._check_space(cell)
        if cell.key not in self._sizes:
            from ..child_net import network_size

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
        return self.evaluate_seeds([(cell, seed)])[0]

    def evaluate_seeds(self, pairs: Sequence[tuple[SmallCell | LargeCell, int]],
                       on_trained: Callable[[LargeCell | SmallCell, int, EvalResult], None]
                       | None = None) -> list[EvalResult]:
        """The result of each ``(cell, seed)`` of ``pairs`` (any seeds, not only
        ``train_seeds``), in their order: cached, else trained, the missing runs handed to the
        backend together (a ``"process"`` pool trains ``workers`` of them at once) and each
        stored the moment it finishes. A pair asked twice is trained once; its repeat is
        reported with ``source="cache"``. ``on_trained(cell, seed, result)`` is called as each
        run this call trains (or sees fail) finishes, in the order they finish, so a long batch
        can report its progress; ``cell`` is the canonical cell that trained."""
        for cell, _ in pairs:
            self._check_space(cell)
        pairs = [(cell, int(seed)) for cell, seed in pairs]
        results, served, answers = self._results(pairs, on_trained), set(), []
        for cell, seed in pairs:
            result = dict(results[(cell.key, seed)], arch=cell.to_string())
            if (cell.key, seed) in served and result["source"] == "training":
                result["source"] = "cache"  # trained once for these pairs, served twice
            served.add((cell.key, seed))
            answers.append(result)
        return answers

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
        per_seed = iter(self.evaluate_seeds([(cell, s) for cell, seeds in wanted for s in seeds]))
        return [mean_result([next(per_seed) for _ in seeds]) for _, seeds in wanted]

    def _results(self, pairs: list, on_trained=None) -> dict[tuple[str, int], EvalResult]:
        """The result of every distinct (cell, seed) in ``pairs``: cached, else trained by the
        backend and stored in the cache as each finishes. A run that another process is training
        into the same checkpoint folder (a second search on the same cache) is waited for: its
        row is read from the cache once it is there, or the run is taken over if that process
        stopped without finishing it."""
        results = self._train_missing(pairs, on_trained)
        while any(isinstance(r, str) for r in results.values()):
            time.sleep(IN_PROGRESS_POLL_SECONDS)
            waiting = [(self._asked[key], seed) for (key, seed), r in results.items()
                       if isinstance(r, str)]
            results.update(self._train_missing(waiting, on_trained))
        return results

    def _train_missing(self, pairs: list,
                       on_trained=None) -> dict[tuple[str, int], EvalResult | str]:
        """One pass of :meth:`_results`; a run held by another process gives its reason (a
        string) instead of a result."""
        from ..backends.jobs import IN_PROGRESS, Job

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
                    if on_trained is not None:
                        on_trained(job.cell, job.seed, outcome)
            finally:
                outcomes.close()  # on an interrupt: cancel what did not finish
        return results

    def _complete_latency(self, cell, identity: dict, cached: EvalResult) -> EvalResult:
        """A cached row stored without latency, with its latency measured now (no training
        needed: latency does not depend on the weights) and stored in its row."""
        from ..child_net import ChildNet
        from ..training import measure_latency_ms

        latency = measure_latency_ms(ChildNet(cell.canonical()), (1, 1, 28, 28))
        self.cache.complete(identity, latency_ms=latency)
        return dict(cached, latency_ms=latency)

    def close(self) -> None:
        self.backend.close()
        if self.cache is not None:
            self.cache.close()
        self._data = None
