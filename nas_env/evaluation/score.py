"""Rewards from zero-cost scores of the untrained network, alone or beside a short training.

:class:`ScoreEvaluator` answers the same :class:`~nas_env.evaluation.interface.Evaluator`
interface as the table and live evaluators, so an env searches on it unchanged; its reward is the
result's ``score`` (the evaluator's :attr:`reward_key`), not a validation accuracy, which it
leaves NaN.

A raw score (synflow, NASWOT, ...) has no scale that carries from one cell space to another, so
the reward is a percentile: for each score of the protocol, the share (0 to 100) of a reference
sample of cells that score lower (ties count half), averaged over the protocol's scores. On
A_small the sample is all 64 cells, so the reward is an exact rank; on A_large it is
``reference_cells`` random cells with the scored cell's number of blocks, drawn with a fixed
seed, scored once per evaluator (and cached). Rewards then lie in [0, 100], as accuracies do,
below which an r_param budget's -100 penalty stays.

A hybrid protocol (``training`` set, e.g. ``"cheap+zc"``) also trains each cell under that
protocol and counts the percentile of its validation accuracy, among the reference cells trained
the same way, as one more vote; the reward then costs the training plus the scoring.

Every cell's raw scores (all of :data:`~nas_env.zero_cost.SCORES`, in ``proxy_scores``) are
stored in the evaluation cache under the run identity of the scoring settings
(:meth:`~nas_env.protocols.ScoreProtocol.scoring`), so protocols that differ only in which scores
they average share the rows.

    import gymnasium as gym
    import nas_env

    env = gym.make("NASCell-large-v0", protocol="zc-vote")     # about a second per cell on a CPU
    env.reset(seed=0)
    _, reward, *_ , info = env.step(env.action_space.sample())
    reward == info["score"], info["proxy_scores"]["synflow"]
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from .interface import SIZE_METRICS, SPACES, Evaluator
from ..protocols import SCORE_PROTOCOLS, ScoreProtocol
from ..results import NOT_TRAINED, EvalResult
from ..spaces import LargeCell, SmallCell

REFERENCE_SEED = 20_261_202
"""Seeds the draw of an A_large reference sample: every evaluator draws the same cells."""


TRAINED = "trained validation accuracy"
"""The key of a hybrid protocol's training vote in a reference sample."""


def _trained_value(result: EvalResult) -> float:
    """A trained result's validation accuracy; NaN (ranked lowest) where the run failed."""
    return math.nan if result["failure"] else float(result["validation_accuracy"])


def get_score_protocol(protocol: str | ScoreProtocol) -> ScoreProtocol:
    """A training-free protocol from its name in :data:`~nas_env.protocols.SCORE_PROTOCOLS`, or
    itself."""
    if isinstance(protocol, ScoreProtocol):
        return protocol
    if protocol not in SCORE_PROTOCOLS:
        raise ValueError(f"unknown training-free protocol {protocol!r}; allowed: "
                         f"{', '.join(SCORE_PROTOCOLS)}")
    return SCORE_PROTOCOLS[protocol]


def percentile(value: float, sample: np.ndarray) -> float:
    """The share of ``sample`` below ``value``, ties counting half, in percent (a failed score,
    -inf or NaN, ranks below every finite one)."""
    sample = np.where(np.isfinite(sample), sample, -np.inf)
    value = value if math.isfinite(value) else -math.inf
    return float(100.0 * ((sample < value).sum() + 0.5 * (sample == value).sum()) / len(sample))


class ScoreEvaluator(Evaluator):
    """Rewards from zero-cost scores of the untrained network; see the module docstring.

    :param space: ``"small"`` or ``"large"``.
    :param dataset: ``"mnist"`` or ``"fashion_mnist"`` (its first training images are scored).
    :param protocol: a name from :data:`~nas_env.protocols.SCORE_PROTOCOLS` or a
        :class:`~nas_env.protocols.ScoreProtocol`.
    :param data_root: the dataset root (default: ``$NAS_ENV_DATA``, else the per-user cache).
    :param cache: an :class:`~nas_env.cache.EvaluationCache`, a path, ``None`` (the default file)
        or ``False`` (no cache).
    :param threads: torch CPU threads while scoring (restored after); ``None``: unchanged.
    :param live_keywords: for a hybrid protocol (``training`` set), the keywords of the
        :class:`~nas_env.evaluation.live.LiveEvaluator` that trains its cells (``train_seeds``,
        ``device``, ``backend``, ...); it shares ``data_root``, ``cache`` and ``threads``.
    """

    reward_key = "score"

    def __init__(self, space: str = "large", dataset: str = "mnist", protocol="zc-vote",
                 data_root: str | os.PathLike | None = None, cache=None,
                 threads: int | None = None, **live_keywords) -> None:
        from ..cache import open_cache
        from ..data import DATASETS

        if space not in SPACES:
            raise ValueError(f"space={space!r}; allowed: {', '.join(SPACES)}")
        if dataset not in DATASETS:
            raise ValueError(f"dataset={dataset!r}; allowed: {', '.join(DATASETS)}")
        self.space, self.dataset = space, dataset
        self._protocol = get_score_protocol(protocol)
        self.protocol = self._protocol.name
        self.data_root, self.threads = data_root, threads
        self.cache = open_cache(cache)
        self._data = None
        self._data_record: dict | None = None
        self._references: dict[int, dict[str, np.ndarray]] = {}
        self._live = None
        if self._protocol.training is not None:
            from .live import LiveEvaluator

            self._live = LiveEvaluator(space, dataset, self._protocol.training, data_root=data_root,
                                       cache=self.cache if self.cache is not None else False,
                                       threads=threads, **live_keywords)
        elif live_keywords:
            raise ValueError(f"{', '.join(sorted(live_keywords))} configure training; protocol "
                             f"{self.protocol!r} trains nothing")

    @property
    def data(self):
        """The dataset's splits, loaded on first use."""
        if self._data is None:
            from ..data import load_dataset

            self._data = load_dataset(self.dataset, self.data_root)
        return self._data

    def _check_space(self, cell) -> None:
        space = "small" if isinstance(cell, SmallCell) else "large"
        if space != self.space:
            raise ValueError(f"{cell} is an A_{space} cell; this evaluator's space is A_{self.space}")

    def size(self, cell: SmallCell | LargeCell) -> dict:
        from ..child_net import network_size

        self._check_space(cell)
        return network_size(cell)

    def check_metric(self, metric: str) -> None:
        if self._live is not None:
            return self._live.check_metric(metric)
        if metric == "latency_ms":
            raise ValueError("a latency budget needs a live training evaluator with "
                             "measure_latency=True; a training-free protocol measures no latency")

    def identity(self, cell: SmallCell | LargeCell) -> dict:
        """The run identity the raw scores of ``cell`` are cached under."""
        from ..data import known_data_record
        from ..identity import run_identity

        if self._data_record is None:
            self._data_record = known_data_record(self.dataset, self.data_root, lambda: self.data)
        from ..zero_cost import SCORES

        proto = self._protocol
        # A row holds every score of SCORES as it was when the row was computed: a row from a
        # version with other scores is another run.
        return run_identity(space=self.space, arch_key=cell.key, dataset=self.dataset,
                            data=self._data_record, split_sizes=[proto.batch_size, 0, 0],
                            protocol={**proto.scoring(), "scores": list(SCORES)},
                            seed=proto.seed, precision="fp32", device_type="cpu")

    def raw_scores(self, cell: SmallCell | LargeCell) -> EvalResult:
        """Every zero-cost score of ``cell`` (cached, else computed and stored), with
        ``score=None``: the record before its percentile is taken."""
        self._check_space(cell)
        identity = self.identity(cell) if self.cache is not None else None
        found = self.cache.get(identity) if identity is not None else None
        if found is not None:
            return found
        result = self._compute(cell)
        if self.cache is not None:
            self.cache.put(identity, result)
        return result

    def _compute(self, cell) -> EvalResult:
        import torch

        from ..zero_cost import SCORES, score_cell

        proto = self._protocol
        canonical = cell.canonical()
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            start = time.perf_counter()
            scores = score_cell(canonical, self.data, tuple(SCORES), seed=proto.seed,
                                inits=proto.inits, batch_size=proto.batch_size,
                                filters=proto.filters, fc_units=proto.fc_units)
            seconds = time.perf_counter() - start
        finally:
            torch.set_num_threads(previous)
        sizes = self.size(cell)
        return EvalResult(
            arch=cell.to_string(), arch_key=cell.key,
            arch_index=cell.index if isinstance(cell, SmallCell) else None,
            seed=proto.seed, num_seeds=1, validation_accuracy=math.nan, test_accuracy=math.nan,
            val_curve=[], train_loss_sum=None, loss_curve=[], score=None,
            proxy_scores={k: float(v) for k, v in scores.items()}, training_time=seconds,
            evaluation_time=0.0, **{k: sizes[k] for k in SIZE_METRICS}, latency_ms=None,
            diverged=False, failure=None, source="training", dataset=self.dataset,
            protocol="zero_cost", fidelity=1.0, device="cpu", precision="fp32", **NOT_TRAINED)

    def reference_sample(self, cell: SmallCell | LargeCell) -> dict[str, np.ndarray]:
        """The raw scores of the reference cells the percentiles of ``cell`` are taken among."""
        blocks = cell.num_blocks if isinstance(cell, LargeCell) else 0
        if blocks not in self._references:
            if isinstance(cell, SmallCell):
                cells = list(SmallCell.all())
            else:
                rng = np.random.default_rng([REFERENCE_SEED, blocks])
                nvec = LargeCell.action_nvec(blocks)
                cells = [LargeCell.from_action([int(rng.integers(n)) for n in nvec])
                         for _ in range(self._protocol.reference_cells)]
            records = [self.raw_scores(c)["proxy_scores"] for c in cells]
            sample = {k: np.array([r[k] for r in records]) for k in self._protocol.scores}
            if self._live is not None:
                sample[TRAINED] = np.array([_trained_value(r) for r in
                                            self._live.evaluate_batch(cells)])
            self._references[blocks] = sample
        return self._references[blocks]

    def evaluate(self, cell: SmallCell | LargeCell,
                 rng: np.random.Generator | None = None) -> EvalResult:
        raw = self.raw_scores(cell)
        sample = self.reference_sample(cell)
        votes = [percentile(raw["proxy_scores"][k], sample[k]) for k in self._protocol.scores]
        if self._live is None:
            result = dict(raw, arch=cell.to_string(), protocol=self.protocol)
        else:  # the trained result, with the scores beside it and both costs charged
            trained = self._live.evaluate(cell, rng)
            votes.append(percentile(_trained_value(trained), sample[TRAINED]))
            result = dict(trained, proxy_scores=raw["proxy_scores"], protocol=self.protocol,
                          training_time=trained["training_time"] + raw["training_time"])
        result["score"] = float(np.mean(votes))
        return result

    def close(self) -> None:
        if self._live is not None:
            self._live.backend.close()
        if self.cache is not None:
            self.cache.close()
        self._data = None
