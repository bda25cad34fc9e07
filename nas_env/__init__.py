"""Neural architecture search of convolutional cells as Gymnasium environments.

Importing the package registers its environment ids; the envs load only when made.
"""

from gymnasium.envs.registration import register, registry

# A guard, not a re-registration: reloading the package must not warn "Overriding environment".
if "NASCell-small-v0" not in registry:
    register(
        id="NASCell-small-v0",
        entry_point="nas_env.envs.cell_env:NASCellEnv",
        kwargs={"dataset": "mnist", "protocol": "fast"},
    )
if "NASCell-large-v0" not in registry:
    register(
        id="NASCell-large-v0",
        entry_point="nas_env.envs.large_env:NASCellLargeEnv",
        kwargs={"dataset": "mnist", "protocol": "loss12k", "blocks": 5},
    )
if "NASCellSeq-small-v0" not in registry:
    register(
        id="NASCellSeq-small-v0",
        entry_point="nas_env.envs.seq_env:NASCellSeqEnv",
        kwargs={"dataset": "mnist", "protocol": "fast"},
    )
