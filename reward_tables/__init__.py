"""Reward tables shipped with nas_env: ``<space>_<dataset>_<protocol>.csv`` plus a JSON sidecar
that records the protocol the rows were trained with (see ``nas_env.tables.builder``)."""
