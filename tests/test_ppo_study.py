"""The PPO settings study: what a setting's name stands for, and one run of a setting."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "small_fixture.csv"


@pytest.fixture(scope="module")
def study(load_script):
    return load_script("ppo_study")


def test_a_floor_setting_is_its_schedule_plus_the_penalty_floor(study):
    assert study.parse_setting("ent-0.2-0-20+floor") == {
        "ent_coef": 0.2, "ent_coef_final": 0.0, "ent_decay_iterations": 20,
        "reward_transform": "penalty-to-floor", "fused_adam": False,
        "flush_denormal": False}
    assert study.parse_setting("constant+floor")["ent_decay_iterations"] == 0
    # A stored setting's name keeps meaning what its runs were made with.
    assert study.parse_setting("ent-0.2-0-20")["fused_adam"] is False
    assert study.parse_setting("ent-0.2-0-20+fused+floor")["fused_adam"] is True
    with pytest.raises(argparse.ArgumentTypeError, match=r"\+floor"):
        study.parse_setting("ent-0.2-0+floor")


def test_a_floor_run_trains_on_the_floor_and_is_judged_on_the_raw_reward(study, monkeypatch):
    import agents.reward_transforms as transforms

    floors = []
    original = transforms.PenaltyToFloor.reward

    def spy(self, reward):
        floors.append(self.floor)
        return original(self, reward)

    monkeypatch.setattr(transforms.PenaltyToFloor, "reward", spy)
    row = study.run_one(("ent-0.2-0-20+floor", "param", 0, 3, {"table_path": str(FIXTURE)}))
    assert len(floors) == 3 * 20 and len(set(floors)) == 1  # every sample went through the floor
    assert row["setting"] == "ent-0.2-0-20+floor" and row["greedy_regret"] >= 0


def test_a_mask_run_proposes_only_cells_within_the_budget(study, monkeypatch):
    import agents.ppo_search as ppo_search

    assert study.parse_setting("ent-0.2-0-20+fused+ftz+mask")["mask_over_budget"] is True
    assert "mask_over_budget" not in study.parse_setting("ent-0.2-0-20+fused+ftz")
    models = []
    original = ppo_search.SearchPPO.learn

    def keep(self, *args, **kwargs):
        models.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ppo_search.SearchPPO, "learn", keep)
    row = study.run_one(("ent-0.2-0-20+fused+ftz+mask", "param", 0, 3, {"table_path": str(FIXTURE)}))
    rewards = models[0].rollout_buffer.rewards
    assert models[0].policy.decoder.masked and (rewards > -100).all()
    assert row["greedy_regret"] >= 0


def test_the_summary_covers_every_run_the_folder_holds(study, tmp_path, monkeypatch):
    import sys

    for setting in ("constant", "ent-0.2-0-20"):
        monkeypatch.setattr(sys, "argv", [
            "ppo_study.py", "--settings", setting, "--seeds", "0-0", "--iterations", "2",
            "--rewards", "val", "--table-path", str(FIXTURE), "--workers", "1",
            "--out-dir", str(tmp_path)])
        study.main()
    summary = (tmp_path / "summary.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in summary[2:]] == ["constant", "ent-0.2-0-20"]
