"""Training protocols: how a child network is trained, as plain configuration.

A :class:`Protocol` names every setting of a training run (epochs, learning rate and schedule,
batch size, the subsets of each split, the width of the network trained, the precision); the
named ones are in :data:`PROTOCOLS`. This module imports neither torch nor the training loop, so
reading a protocol, hashing it or opening the evaluation cache stays light;
:func:`nas_env.training.train_child` runs one.

Protocols
---------
``paper``
    The paper's: 10 epochs, Adam at a constant lr 1e-4, NLL loss. The paper names no batch size;
    we use 128.
``fast``
    1 epoch, Adam with a one-cycle schedule peaking at lr 2e-3, batch 128, NLL loss.
``cheap``
    For searching on a CPU: a narrower proxy of the same architecture (filters 8 and 16, a
    128-unit classifier) trained in fp32 for one epoch over 4,000 training images (batch 32,
    one-cycle to lr 5e-3), validated and tested on 2,000 images each;
    ``docs/fidelity/cheap-history.md`` gives how it was chosen, ``docs/fidelity/index.md`` how
    it ranks cells.
``loss12k``
    ``loss16k`` on 12,000 training images, within the 20 s cost goal on 2 cores; the default of
    ``NASCell-large-v0``: of every reward tried it ranks random 5-block cells most like one epoch
    of full-size training (``docs/fidelity/late-loss.md``).
``loss16k``
    ``cheap``'s network trained on four times the images (16,000, batch 64, one-cycle to lr 5e-3)
    and read by its late training loss (``signal="late_loss"``): the result's ``score`` is
    ``100 * exp(-L)``, where ``L`` is the mean training loss over the second half of the epoch.
    In the first epoch every batch is new to the network, so ``L`` is a held-out loss on 8,000
    images; validated (not rewarded) and tested on 2,000 images each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

CELL_FILTERS = (64, 128)
"""The paper's filter counts of the two cells."""
FC_UNITS = 4096
"""The paper's width of the hidden fully connected layer."""

SCHEDULES = ("constant", "onecycle")
PRECISIONS = ("bf16", "fp32")
REWARD_KEYS = {"validation_accuracy": "validation_accuracy", "late_loss": "score"}
"""For each signal a protocol's runs are read by (:attr:`Protocol.signal`), the result key (and
table column) that holds it."""
SIGNALS = tuple(REWARD_KEYS)
ADDED_FIELDS = {"loss_points_per_epoch": None, "signal": "validation_accuracy"}
"""Fields added after every earlier run was stored, with the value each earlier protocol had: a
protocol's record (:meth:`Protocol.as_dict`, and so its runs' identities) leaves them out while
they hold it, so no earlier run changes identity."""


@dataclass(frozen=True)
class Protocol:
    """How a child network is trained.

    :param name: the protocol's name.
    :param epochs: passes over the train split.
    :param lr: Adam's learning rate (the peak of the one-cycle schedule).
    :param schedule: ``"constant"`` or ``"onecycle"``.
    :param batch_size: images per step.
    :param checkpoints_per_epoch: validation evaluations per epoch.
    :param optimizer: ``"adam"``, the only one implemented (recorded so a table says what it used).
    :param loss: ``"nll"`` (negative log-likelihood of the log-softmax), the only one implemented.
    :param train_images: train on the first this many images of the train split (the split is a
        fixed random permutation, so this is a fixed random subset); ``None``: all of it.
    :param val_images: validate on the first this many validation images; ``None``: all.
    :param test_images: test on the first this many test images; ``None``: all.
    :param filters: the two cells' filter counts of the network trained. Narrower than the paper's
        ``(64, 128)`` makes a cheaper proxy of the same architecture; sizes are still reported
        for the paper-size network.
    :param fc_units: the hidden fully connected layer's width in the network trained.
    :param precision: what ``precision="auto"`` means for this protocol: ``"bf16"`` autocast (with
        channels_last on CPU) or ``"fp32"``.
    :param loss_points_per_epoch: points of the loss curve per epoch, each the mean training loss
        since the previous one; ``None``: one at each validation checkpoint.
    :param signal: what the runs are read by: ``"validation_accuracy"``, or ``"late_loss"``: the
        loss curve's last point ``L`` as a result's ``score``, ``100 * exp(-L)`` (the geometric
        mean of the probability given to the true class, in percent; 0 for a run that diverged),
        which a live evaluator then rewards in place of the validation accuracy.
    """

    name: str
    epochs: int
    lr: float
    schedule: str
    batch_size: int
    checkpoints_per_epoch: int
    optimizer: str = "adam"
    loss: str = "nll"
    train_images: int | None = None
    val_images: int | None = None
    test_images: int | None = None
    filters: tuple[int, int] = CELL_FILTERS
    fc_units: int = FC_UNITS
    precision: str = "bf16"
    loss_points_per_epoch: int | None = None
    signal: str = "validation_accuracy"

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(self.filters))
        if self.optimizer != "adam" or self.loss != "nll":
            raise ValueError(f"optimizer={self.optimizer!r}, loss={self.loss!r}; train_child "
                             "implements the paper's: optimizer='adam', loss='nll'")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r}; allowed: {', '.join(PRECISIONS)}")
        if self.signal not in SIGNALS:
            raise ValueError(f"signal={self.signal!r}; allowed: {', '.join(SIGNALS)}")
        counts = {"epochs": self.epochs, "batch_size": self.batch_size,
                  "checkpoints_per_epoch": self.checkpoints_per_epoch, "fc_units": self.fc_units,
                  "train_images": self.train_images or 1, "val_images": self.val_images or 1,
                  "test_images": self.test_images or 1,
                  "loss_points_per_epoch": 1 if self.loss_points_per_epoch is None
                  else self.loss_points_per_epoch}
        for key, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}={value!r}; allowed: an integer >= 1")
        if len(self.filters) != 2 or not all(isinstance(f, int) and f >= 1 for f in self.filters):
            raise ValueError(f"filters={self.filters!r}; allowed: two integers >= 1")

    @property
    def full_size(self) -> bool:
        """Whether the network trained is the paper-size one."""
        return self.filters == CELL_FILTERS and self.fc_units == FC_UNITS

    def as_dict(self) -> dict:
        """Every field, except those of :data:`ADDED_FIELDS` that hold their earlier value."""
        record = asdict(self)
        for key, earlier in ADDED_FIELDS.items():
            if record[key] == earlier:
                del record[key]
        return record

    @property
    def reward_key(self) -> str:
        """The result key its runs are rewarded by (:data:`REWARD_KEYS`)."""
        return REWARD_KEYS[self.signal]

    @property
    def loss_points(self) -> int:
        """Points of the loss curve per epoch."""
        return self.loss_points_per_epoch or self.checkpoints_per_epoch

    @classmethod
    def from_dict(cls, record: dict) -> "Protocol":
        """The protocol a sidecar or cache row recorded; keys added since it was written take
        their defaults (which are what every older protocol used)."""
        unknown = set(record) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"protocol record has unknown keys {sorted(unknown)}")
        return cls(**record)


PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol("paper", epochs=10, lr=1e-4, schedule="constant", batch_size=128,
                      checkpoints_per_epoch=1),
    "fast": Protocol("fast", epochs=1, lr=2e-3, schedule="onecycle", batch_size=128,
                     checkpoints_per_epoch=4),
    # Searching on a CPU; docs/fidelity/ gives the measurements behind every number.
    "cheap": Protocol("cheap", epochs=1, lr=5e-3, schedule="onecycle", batch_size=32,
                      checkpoints_per_epoch=1, train_images=4_000, val_images=2_000,
                      test_images=2_000, filters=(8, 16), fc_units=128, precision="fp32"),
    "loss16k": Protocol("loss16k", epochs=1, lr=5e-3, schedule="onecycle", batch_size=64,
                        checkpoints_per_epoch=1, train_images=16_000, val_images=2_000,
                        test_images=2_000, filters=(8, 16), fc_units=128, precision="fp32",
                        loss_points_per_epoch=2, signal="late_loss"),
    "loss12k": Protocol("loss12k", epochs=1, lr=5e-3, schedule="onecycle", batch_size=64,
                        checkpoints_per_epoch=1, train_images=12_000, val_images=2_000,
                        test_images=2_000, filters=(8, 16), fc_units=128, precision="fp32",
                        loss_points_per_epoch=2, signal="late_loss"),
}


def get_protocol(protocol: str | dict | Protocol) -> Protocol:
    """A protocol from its name in :data:`PROTOCOLS`, its fields as a dict (e.g. from JSON), or
    itself."""
    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, dict):
        return Protocol.from_dict(protocol)
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)} "
                         f"(training), {', '.join(SCORE_PROTOCOLS)} (training-free)")
    return PROTOCOLS[protocol]


@dataclass(frozen=True)
class ScoreProtocol:
    """A training-free reward: zero-cost scores of the untrained network
    (:mod:`nas_env.zero_cost`), each turned into a percentile among a reference sample of the
    space's cells and averaged over ``scores``.

    :param name: the protocol's name.
    :param scores: the zero-cost scores it averages (names of :data:`nas_env.zero_cost.SCORES`).
    :param seed: seeds the network initialisations.
    :param inits: initialisations each score is averaged over.
    :param batch_size: training images scored (the first ones of the train split, for every cell).
    :param filters: the scored network's two cell widths.
    :param fc_units: the scored network's classifier width.
    :param reference_cells: random cells of the space (of the scored cell's block count, seeded)
        the percentiles are taken among; A_small always uses its 64 cells.
    :param training: a training protocol's name (:data:`PROTOCOLS`) whose validation accuracy
        counts as one more vote beside the scores, its percentile taken among the same reference
        cells trained the same way (a hybrid: the reward then costs that training); ``None``: no
        training.
    """

    name: str
    scores: tuple[str, ...]
    seed: int = 0
    inits: int = 2
    batch_size: int = 64
    filters: tuple[int, int] = (16, 32)
    fc_units: int = 256
    reference_cells: int = 100
    training: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", tuple(self.scores))
        object.__setattr__(self, "filters", tuple(self.filters))
        if not self.scores:
            raise ValueError("scores is empty; name at least one zero-cost score")
        if self.training is not None and self.training not in PROTOCOLS:
            raise ValueError(f"training={self.training!r}; allowed: None or one of "
                             f"{', '.join(PROTOCOLS)}")
        for key in ("inits", "batch_size", "fc_units", "reference_cells"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}={value!r}; allowed: an integer >= 1")

    def scoring(self) -> dict:
        """The fields that determine the raw scores of a cell (not which of them are averaged,
        nor the reference sample), so protocols that differ only there share cached scores."""
        return {"name": "zero_cost", "seed": self.seed, "inits": self.inits,
                "batch_size": self.batch_size, "filters": list(self.filters),
                "fc_units": self.fc_units}

    def as_dict(self) -> dict:
        return asdict(self)


SCORE_PROTOCOLS: dict[str, ScoreProtocol] = {
    # The three best single scores on the MNIST A_small table (docs/fidelity/index.md).
    "zc-vote": ScoreProtocol("zc-vote", ("synflow", "naswot", "jacob_cov")),
    "zc-synflow": ScoreProtocol("zc-synflow", ("synflow",)),
    # zc-vote's scores and cheap's validation accuracy, four equal votes.
    "cheap+zc": ScoreProtocol("cheap+zc", ("synflow", "naswot", "jacob_cov"), training="cheap"),
}
"""The named training-free protocols: ``gym.make(..., evaluator="live", protocol="zc-vote")``."""


def trains_nothing(protocol) -> bool:
    """Whether ``protocol`` (a name) is a training-free one: a score protocol with no training
    run (``cheap+zc`` trains ``cheap`` beside its scores, so it is not)."""
    return isinstance(protocol, str) and protocol in SCORE_PROTOCOLS \
        and SCORE_PROTOCOLS[protocol].training is None


def is_score_protocol(protocol) -> bool:
    """Whether ``protocol`` (a name or an object) is a training-free :class:`ScoreProtocol`."""
    return isinstance(protocol, ScoreProtocol) or (isinstance(protocol, str)
                                                   and protocol in SCORE_PROTOCOLS)
