"""Zero-cost scores: a guess, from one batch and no training, of how well a cell will train.

Each score looks at a freshly initialised child network and returns one float; for every score
here, higher means predicted better. Scoring a cell with every score takes 0.2 s (A_small) to
about 1.3 s (5-block A_large) on one CPU thread, where training it takes minutes, so the scores
can rank cells before any of them is trained.

Tutorial
--------
Score one cell with every score::

    from nas_env.data import load_dataset
    from nas_env.spaces import SmallCell
    from nas_env.zero_cost import SCORES, score_cell

    data = load_dataset("mnist")
    scores = score_cell(SmallCell("conv3x3", "max_pool2x2"), data)
    # {'synflow': ..., 'snip': ..., 'grad_norm': ..., 'naswot': ..., 'jacob_cov': ...,
    #  'zico': ..., 'params': ..., 'macs': ...}

:func:`score_cell` builds a narrow proxy of the child network (``filters=(16, 32)``,
``fc_units=256``: the same architecture, cheaper to probe) ``inits`` times from seeds derived
from ``seed``, scores each on the first ``batch_size`` training images (the same batch for every
cell, so two cells differ by their architecture, not their data), and averages over the
initialisations. The same seed gives the same floats.

The scores of one network and batch are also public, one function per score (:data:`SCORES`
names them): :func:`synflow`, :func:`snip`, :func:`grad_norm`, :func:`naswot`,
:func:`jacob_cov`, :func:`zico` and :func:`meco` (which reads only the batch's first image), each
``score(net, x, y) -> float``; :func:`param_count` and :func:`macs` count the paper-size
network of a cell instead.

Conventions shared by the scores
--------------------------------
- A score never changes the caller's net (weights, BatchNorm statistics, gradients, mode), the
  global RNG or the thread count: it works on a deep copy.
- The copy runs in training mode, as in the reference code of the papers: BatchNorm normalises
  with the statistics of the batch. Dropout is switched off, since it would only add noise to a
  one-batch score (and draw from the global RNG).
- Outputs are the pre-softmax logits: :class:`~nas_env.child_net.ChildNet` ends in
  ``log_softmax``, so its classifier's output is taken; any other module's output is taken as
  logits. The loss ``L`` is the cross-entropy of the logits, the NLL of the batch.
- "Weights" are those of ``nn.Conv2d`` and ``nn.Linear`` layers (the reference code's prunable
  layers); BatchNorm's scale and shift are not counted.
- ``splits`` runs the batch as that many mini-batches (``torch.tensor_split``), as the
  reference code's ``split_data`` does; gradient scores then use the mean of the mini-batch
  gradients. :func:`score_cell` computes :func:`snip`, :func:`grad_norm`, :func:`naswot`,
  :func:`jacob_cov` and :func:`zico` from one shared pass over ``splits=2`` mini-batches (the
  mini-batches ZiCo needs), with exactly the values these functions give with ``splits=2``.

Where things are
----------------
| module | what it holds |
|---|---|
| `nas_env.zero_cost.probe` | the scoring copy, its logits, one shared pass (`run_probe`) |
| `nas_env.zero_cost.gradients` | from weight gradients: `synflow`, `snip`, `grad_norm`, `zico` |
| `nas_env.zero_cost.activations` | scores from activations: `naswot`, `jacob_cov`, `meco` |
| `nas_env.zero_cost.size` | size baselines of a cell: `param_count`, `macs` |
| `nas_env.zero_cost.scoring` | `SCORES` by name, `score_cell`, `init_seed` |

This package's top level re-exports the public scores, :func:`score_cell` and the registries.
"""

from .activations import JACOB_COV_EPSILON, jacob_cov, meco, naswot
from .gradients import grad_norm, snip, synflow, zico
from .scoring import CELL_SCORES, NET_SCORES, SCORES, init_seed, score_cell
from .size import macs, param_count

__all__ = [
    "CELL_SCORES",
    "NET_SCORES",
    "SCORES",
    "grad_norm",
    "init_seed",
    "jacob_cov",
    "macs",
    "meco",
    "naswot",
    "param_count",
    "score_cell",
    "snip",
    "synflow",
    "zico",
]
