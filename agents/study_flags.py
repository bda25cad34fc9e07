"""The flags of ``experiments/exp3_study.py`` that need more than argparse: PPO settings, seed
lists, protocols and the file stems they give, each bad value one line ``exp3_study.py: error:
...`` naming what is allowed (status 2, as argparse exits)."""

from __future__ import annotations

import json
import re
import sys

from agents.ppo_sweep import SWEEP_SETTINGS
from nas_env.cli import parse_int_list, parse_protocol, protocol_name
from nas_env.commands.search import ppo_setting_names
from nas_env.protocols import PROTOCOLS, SCORE_PROTOCOLS, Protocol


def fail(message: str) -> None:
    """Exit with ``exp3_study.py: error: message`` (status 2), as argparse does."""
    print(f"exp3_study.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_settings(text: str) -> tuple[str, dict]:
    """A PPO setting: a name of :data:`SWEEP_SETTINGS`, ``NAME=JSON`` or a JSON object (named
    ``custom``); its keys must be ``make_ppo``'s."""
    name, _, body = ("custom", "", text) if text.lstrip().startswith("{") else text.partition("=")
    if not body:
        if name not in SWEEP_SETTINGS:
            fail(f"PPO setting {text!r}; allowed: {', '.join(SWEEP_SETTINGS)}, NAME=JSON or a "
                 "JSON object, e.g. '{\"ent_coef\": 0.01}'")
        return name, SWEEP_SETTINGS[name]
    if not re.fullmatch(r"[\w.+-]+", name):
        fail(f"PPO setting {text!r}: a NAME of letters, digits, '.', '+' or '-' before '='")
    try:
        setting = json.loads(body)
    except json.JSONDecodeError as err:
        fail(f"PPO setting {text!r} is not JSON ({err})")
    unknown = sorted(set(setting) - set(ppo_setting_names())) if isinstance(setting, dict) else 0
    if unknown != []:
        fail(f"PPO setting {text!r}: write a JSON object of {', '.join(ppo_setting_names())}"
             + (f" (not {', '.join(unknown)})" if unknown else ""))
    return name, setting


def parse_seeds(text: str, flag: str) -> list[int]:
    """Seeds written as ranges and a list (``0-4,7``), sorted and distinct."""
    seeds = parse_int_list(text) if re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text) else []
    if not seeds:
        fail(f"{flag} {text!r}; write seeds >= 0 as a list or ranges, e.g. 0-4 or 0,2,5")
    return sorted(set(seeds))


def protocol_of(text: str, flag: str = "--protocol", training_only: bool = False):
    """``flag``'s value: a name of a training or (unless ``training_only``) a training-free
    protocol, or a JSON object of :class:`~nas_env.protocols.Protocol` fields; returns what
    ``nas-env search`` records."""
    allowed = f"{', '.join(PROTOCOLS)} (training), " + (
        "" if training_only else f"{', '.join(SCORE_PROTOCOLS)} (training-free), ") + (
        "or a JSON object of protocol fields")
    try:
        value = parse_protocol(text)
        if isinstance(value, dict):
            Protocol.from_dict(value)
        elif value in SCORE_PROTOCOLS and training_only:
            raise ValueError("not a training protocol")
        elif value not in PROTOCOLS and value not in SCORE_PROTOCOLS:
            raise ValueError("unknown")
    except (ValueError, TypeError) as err:
        fail(f"{flag} {text!r}: {err}; allowed: {allowed}")
    return value


def file_stem(dataset: str, value) -> str:
    """``{dataset}_{protocol name}`` for file names, the name's odd characters as ``_``."""
    return f"{dataset}_{re.sub(r'[^A-Za-z0-9_.-]', '_', protocol_name(value))}"
