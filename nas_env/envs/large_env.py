"""The one-step A_large search env: every step trains a child network (or finds it cached)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from ..spaces import InvalidArchitectureError, LargeCell
from .search_env import CellSearchEnv


class NASCellLargeEnv(CellSearchEnv):
    """
    ## Description

    Neural architecture search over the cell space A_large of Arora & Krone (their third
    experiment) as a one-step environment. A cell is `blocks` blocks; block `b` picks two inputs
    `h_a, h_b` from the hidden states `0..b` (0 is the cell's input, `i` the output of block
    `i - 1`) and two of the eight ops, and outputs `concat(op1(h_a), op2(h_b))`. The cell outputs
    the block outputs no later block consumes, concatenated and projected by a 1x1 conv (see
    `nas_env.spaces`). Each step proposes one cell and is rewarded with the result of training its
    child CNN live under `protocol`. Every finished training run is stored in an SQLite evaluation
    cache, so proposing a known cell again (or an equivalent one: the two halves of a block
    commute) costs a lookup, and a seeded search re-run with the same cache replays its finished
    evaluations and continues where it stopped.

    ## Action Space

    `MultiDiscrete(LargeCell.action_nvec(blocks))`: `(h_a, h_b, op1, op2)` for each block, with
    `b + 1` choices for the inputs of block `b` and 8 for each op (indices into
    `nas_env.spaces.OPS`, see `NASCell-small-v0`). For 5 blocks: 20 integers,
    `[1, 1, 8, 8, 2, 2, 8, 8, ..., 5, 5, 8, 8]`. An action outside the space raises
    `InvalidArchitectureError` naming the allowed range.

    ## Observation Space

    The paper's constant initial state: `Box(0, 1, (1,), float32)`, always `[0.0]`.

    ## Rewards

    - `reward="val"`: under the default `protocol="loss12k"` (and `"loss16k"`: protocols read by
      their late training loss, `signal="late_loss"` in `nas_env.protocols`), the run's `score`:
      `100 * exp(-L)` for the mean training loss `L` over the second half of its one epoch, that
      is the geometric mean of the probability the network gave the true class of images it had
      not yet trained on, in percent (0 for a run that diverged); under `"cheap"`, `"fast"` and
      `"paper"`, the cell's validation accuracy in percent; under a training-free protocol
      (`"zc-vote"`, `"zc-synflow"`: `nas_env.evaluation.score`), the cell's `score`: the mean
      percentile (0 to 100) of its zero-cost scores among a fixed sample of random cells with as
      many blocks, with no training at all.
    - `reward="param"`: the paper's r_param: `-100.0` when the budget metric is at least the
      budget `n`, else the `reward="val"` reward. Size budgets (`"cell_parameters"`, the default
      with `n = 150,000`, `"trainable_parameters"`, `"flops"`) are checked from the architecture
      before any training: an over-budget cell costs nothing (`info["budget_met"]` is `False`,
      `env.unwrapped.last_provenance["source"] == "skipped"`).
    - **Failure**: a run whose loss turns NaN or infinite (`info["failure"] == "diverged"`, cached
      like any finished run) or that runs out of GPU memory (`"out_of_memory: ..."`, not cached)
      does not end the search; its reward is `0.0` under r_val and `-100.0` under r_param, never
      better than the budget penalty.

    `protocol="loss12k"` is the default because, of every reward tried within the cost goal of
    20 s per random 5-block cell on 2 cores (it takes a median of 17.9 s), it ranks the 60 cells of
    the A_large reference set most like one epoch of full-size training (`fast`, two seeds, on
    Fashion-MNIST): Spearman 0.50, against 0.23 for `"cheap"`, the default before it; no
    training-free score ranked them above chance (`docs/fidelity/late-loss.md`).
    That ranking is moderate: retrain a search's best cells with `fast` before claiming anything
    about them. `"cheap"` (the same network's validation accuracy after 4,000 images, about 7.5 s
    per cell) stays available; experiment 3's shipped caches are `cheap`'s.

    Sizes (parameters, MACs) are those of the paper-size child network (filters 64 and 128, a
    4096-unit classifier), whatever narrower proxy a cheap protocol trains. The test accuracy is
    reported in `info`, never rewarded.

    ## Starting State

    Always the constant observation `[0.0]`.

    ## Episode End

    1. Termination: after one step; every episode evaluates one architecture.

    There is no truncation.

    ## Info

    The evaluation's record (`nas_env.results.EvalResult`): `arch`, `arch_key`, `arch_index`
    (`None` here), `seed`, `num_seeds`, `validation_accuracy`, `test_accuracy`, `val_curve`,
    `train_loss_sum` and `loss_curve` (the training loss, summed and per checkpoint), `score`
    (late-loss and training-free protocols) and `proxy_scores` (training-free only), `training_time`, `trainable_parameters`, `cell_parameters`, `flops`, `latency_ms`, `diverged`,
    `failure`, `dataset`, `protocol`, `fidelity`, `device`, `precision` (`latency_ms` is `None`
    unless `measure_latency=True`); plus `budget_met` and `total_training_time` (the simulated cost of the search so far: the summed
    training time of every cell evaluated, cached or not; zeroed by a seeded `reset`).

    Where the figures came from is not in `info` (the same seed and action give the same info,
    trained or cached): `env.unwrapped.last_provenance` holds the last cell's `source`
    (`"training"`, `"cache"` or `"skipped"`), `worker`, `hardware`, `threads`, `wait_seconds`
    and `run_seconds`, and `env.unwrapped.source_counts` counts every cell evaluated by source.

    ## Arguments

    | Parameter         | Type      | Default   | Description                                         |
    |-------------------|-----------|-----------|-----------------------------------------------------|
    | `blocks`          | **int**   | `5`       | blocks per cell                                     |
    | `dataset`         | **str**   | `"mnist"` | `"mnist"` or `"fashion_mnist"`                      |
    | `protocol`        | **str**   | `"loss12k"` | training protocol: `"loss12k"`, `"loss16k"`,      |
    |                   |           |           | `"cheap"`, `"fast"`, `"paper"`; training-free:      |
    |                   |           |           | `"zc-vote"`, `"zc-synflow"`                         |
    | `reward`          | **str**   | `"val"`   | `"val"` or `"param"`                                |
    | `budget_scope`    | **str**   | `None`    | `"cells"` (the default) or `"network"` parameters   |
    | `budget_metric`   | **str**   | `None`    | any budget metric instead of a scope                |
    | `budget`          | **float** | `None`    | `n`: 150,000 for cell parameters, else required     |
    | `seed_mode`       | **str**   | `"mean"`  | `"mean"` over `train_seeds` or `"sample"` one       |
    | `train_seeds`     | **list**  | `(0,)`    | training seeds of each cell                         |
    | `cache_path`      | **str**   | `None`    | SQLite cache file (default: user cache directory)   |
    | `data_root`       | **str**   | `None`    | dataset root (default: `$NAS_ENV_DATA`, user cache) |
    | `device`          | **str**   | `"auto"`  | `"auto"`, `"cpu"` or `"cuda"`                       |
    | `threads`         | **int**   | `None`    | torch CPU threads while training (restored after)   |
    | `measure_latency` | **bool**  | `False`   | time CPU inference of each cell (for a latency budget) |
    | `backend`         | **str**   | `None`    | who trains a batch: `"inline"` (the default),       |
    |                   |           |           | `"process"`, `"ray"` or an `EvalBackend`            |
    | `workers`         | **int**   | `None`    | jobs at once (`"process"`: 2; `"ray"`: its CPUs)    |
    | `checkpoint_dir`  | **str**   | `None`    | where a training run saves its state, to resume it  |
    | `checkpoint_every`| **float** | `300`     | seconds of training between two saves               |
    | `evaluator`       | **str**   | `"live"`  | or an `nas_env.evaluation.Evaluator` instance       |

    The dataset is loaded once, on the first training, and kept in memory. With a
    `checkpoint_dir`, a run of hours survives an interrupt, and after
    `nas_env.run_checkpoint.request_stop()` (what the experiment scripts do on SIGTERM or
    Ctrl-C) `step` saves the runs in training at the end of their current step and raises
    `RunStopped`; the same search run again replays the cache and resumes them.

    ```python
    >>> import gymnasium as gym
    >>> import nas_env
    >>> env = gym.make("NASCell-large-v0", blocks=1, cache_path=":memory:")
    >>> env.action_space
    MultiDiscrete([1 1 8 8])

    ```

    ## Version History

    * v0: Initial version.
    """

    def __init__(self, blocks: int = 5, protocol: str = "loss12k", evaluator="live",
                 **kwargs: Any) -> None:
        if isinstance(blocks, bool) or not isinstance(blocks, (int, np.integer)) or blocks < 1:
            raise InvalidArchitectureError(f"blocks={blocks!r}; allowed: an integer >= 1")
        super().__init__("large", protocol=protocol, evaluator=evaluator, **kwargs)
        self.blocks = int(blocks)
        self.action_space = spaces.MultiDiscrete(LargeCell.action_nvec(self.blocks))
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def decode(self, action) -> LargeCell:
        """The cell an action names (checked)."""
        values = np.asarray(action)
        nvec = self.action_space.nvec
        if values.shape != nvec.shape or not np.issubdtype(values.dtype, np.integer) \
                or (values < 0).any() or (values >= nvec).any():
            raise InvalidArchitectureError(
                f"action {np.asarray(action).tolist()!r} is outside MultiDiscrete({nvec.tolist()}); "
                f"allowed: {len(nvec)} integers (h_a, h_b, op1, op2 per block), entry i from 0 to "
                "nvec[i] - 1"
            )
        return LargeCell.from_action(values.tolist(), self.blocks)

    def step(self, action):
        reward, info = self.reward_cell(self.decode(action))
        return np.zeros(1, np.float32), reward, True, False, info
