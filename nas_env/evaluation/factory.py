"""The evaluator an env's keywords name: a table, a live training or a training-free protocol."""

from __future__ import annotations

from ..tables.files import load_table, table_path as shipped_table_path
from ..tables.reward_table import RewardTable
from .interface import Evaluator
from .live import LiveEvaluator
from .table import TableEvaluator

LIVE_KEYWORDS = ("data_root", "cache_path", "train_seeds", "device", "threads", "measure_latency",
                 "backend", "workers", "checkpoint_dir", "checkpoint_every")
"""The env keywords that configure the live evaluator an env makes (``None``: not given)."""


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
    from ..protocols import is_score_protocol

    if is_score_protocol(protocol):
        if evaluator != "live":
            raise ValueError(f"protocol {getattr(protocol, 'name', protocol)!r} is training-free; "
                             "it has no reward table: pass evaluator='live' with it")
        from .score import get_score_protocol

        allowed = {"data_root", "cache_path", "threads"}
        if set(given) - allowed and get_score_protocol(protocol).training is None:
            raise ValueError(f"{', '.join(sorted(set(given) - allowed))} configure training; a "
                             f"training-free protocol takes only {', '.join(sorted(allowed))}")
        if table_path is not None or fidelity != 1.0:
            raise ValueError("table_path and fidelity apply to reward tables, not to a "
                             "training-free protocol")
        from .score import ScoreEvaluator

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
