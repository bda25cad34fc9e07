"""The entropy bonus schedule: the coefficient each PPO update trains with."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from stable_baselines3.common.callbacks import BaseCallback

import nas_env  # noqa: F401  (registers the ids)
from agents.entropy_schedule import EntropySchedule
from agents.ppo_search import SearchPPO, make_ppo

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "small_fixture.csv"


def test_the_coefficient_falls_linearly_then_holds():
    schedule = EntropySchedule(0.1, 0.0, 4)
    assert [round(schedule.value(k), 6) for k in range(1, 8)] == [0.1, 0.075, 0.05, 0.025, 0, 0, 0]


@pytest.mark.parametrize("bad", [dict(start=-0.1), dict(end=float("nan")), dict(iterations=0),
                                 dict(iterations=2.5)])
def test_a_bad_schedule_names_what_is_allowed(bad):
    with pytest.raises(ValueError, match="allowed|must be a number >= 0"):
        EntropySchedule(**{"start": 0.1, "end": 0.0, "iterations": 3, **bad})


class RecordCoefficient(BaseCallback):
    """The ent_coef each update used, read once the next batch starts."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.model.updates_done:
            self.seen.append(self.model.ent_coef)


def search(**overrides) -> tuple[SearchPPO, RecordCoefficient]:
    env = gym.make("NASCell-small-v0", table_path=FIXTURE)
    model = make_ppo(env, seed=0, n_steps=4, batch_size=4, n_epochs=1, **overrides)
    recorder = RecordCoefficient()
    model.learn(total_timesteps=4 * 6, callback=recorder)
    return model, recorder


def test_each_update_of_a_search_trains_with_the_scheduled_coefficient(tmp_path):
    model, recorder = search(ent_coef=0.1, ent_coef_final=0.0, ent_decay_iterations=3)
    assert [round(c, 6) for c in recorder.seen] == [0.1, 0.066667, 0.033333, 0, 0]
    # Saved and loaded, the model goes on from its sixth update.
    model.save(tmp_path / "model.zip")
    loaded = SearchPPO.load(tmp_path / "model.zip", device="cpu")
    assert loaded.updates_done == 6 and loaded.ent_schedule == EntropySchedule(0.1, 0.0, 3)


def test_no_decay_keeps_the_constant_bonus():
    _, recorder = search(ent_coef=0.05, ent_decay_iterations=0)
    assert recorder.seen == [0.05] * 5


def test_an_unknown_setting_names_the_allowed_ones():
    with pytest.raises(ValueError, match="ent_decay_iterations"):
        make_ppo(gym.make("NASCell-small-v0", table_path=FIXTURE), seed=0, ent_decay=3)
