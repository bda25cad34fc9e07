"""A policy that proposes only allowed actions: the decoder's mask, the env's allowed_actions()
and make_ppo(mask_over_budget=True)."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import nas_env  # noqa: F401  (registers the env ids)
from agents.ppo_search import SearchPPO, make_ppo
from agents.reward_transforms import PenaltyToFloor
from agents.token_decoder import TokenDecoder, path_entropy, path_log_prob, prefix_masks
from nas_env.rewards import R_PARAM_PENALTY

ALL_PAIRS = th.tensor(list(itertools.product(range(8), range(8))))


def random_allowed(seed: int) -> np.ndarray:
    allowed = np.random.default_rng(seed).random((8, 8)) < 0.4
    allowed[5, :] = False   # a first token with no allowed continuation
    allowed[2, :] = True
    return allowed


def test_the_decoder_samples_and_greedily_picks_only_allowed_actions():
    allowed = random_allowed(0)
    th.manual_seed(0)
    decoder = TokenDecoder([8, 8], allowed=allowed)
    sampled, _ = decoder.decode(4000)
    greedy, _ = decoder.decode(3, deterministic=True)
    for actions in (sampled, greedy):
        assert allowed[actions[:, 0].numpy(), actions[:, 1].numpy()].all()
    # Every allowed action is reachable: sampling covers them all.
    seen = {tuple(a) for a in sampled.tolist()}
    assert seen == {tuple(a) for a in np.argwhere(allowed).tolist()}


def test_the_allowed_actions_carry_all_the_probability_and_scoring_matches_decoding():
    allowed = random_allowed(1)
    th.manual_seed(1)
    decoder = TokenDecoder([8, 8], allowed=allowed)
    probs = path_log_prob(decoder.token_log_probs(ALL_PAIRS), ALL_PAIRS).exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert probs[~th.from_numpy(allowed.reshape(-1))].max().item() == 0.0
    actions, tables = decoder.decode(64)
    assert th.equal(tables, decoder.token_log_probs(actions))
    assert path_entropy(tables).isfinite().all()


def test_a_masked_update_has_finite_gradients():
    th.manual_seed(2)
    decoder = TokenDecoder([8, 8], allowed=random_allowed(2))
    actions, _ = decoder.decode(32)
    tables = decoder.token_log_probs(actions)
    (-(path_log_prob(tables, actions).mean() + 0.1 * path_entropy(tables).mean())).backward()
    assert all(p.grad is None or p.grad.isfinite().all() for p in decoder.parameters())


def test_allowing_everything_is_bitwise_the_unmasked_decoder():
    th.manual_seed(3)
    plain = TokenDecoder([8, 8])
    th.manual_seed(3)
    masked = TokenDecoder([8, 8], allowed=np.ones((8, 8), dtype=bool))
    th.manual_seed(4)
    a_plain, t_plain = plain.decode(50)
    th.manual_seed(4)
    a_masked, t_masked = masked.decode(50)
    assert th.equal(a_plain, a_masked) and th.equal(t_plain, t_masked)
    assert th.equal(plain.token_log_probs(a_plain), masked.token_log_probs(a_plain))


def test_prefix_masks_follow_the_allowed_table():
    allowed = np.zeros((2, 3, 2), dtype=bool)
    allowed[0, 1, 1] = allowed[1, 2, 0] = True
    first, second, third = prefix_masks(allowed, (2, 3, 2))
    assert first.tolist() == [[True, True]]
    assert second.tolist() == [[False, True, False], [False, False, True]]
    assert third[0 * 3 + 1].tolist() == [False, True] and third[1 * 3 + 2].tolist() == [True, False]
    assert third[0].tolist() == [True, True]   # a prefix no allowed action starts with


@pytest.mark.parametrize("allowed, message", [
    (np.ones((8, 7), dtype=bool), "nvec"),
    (np.zeros((8, 8), dtype=bool), "no action"),
])
def test_a_wrong_allowed_table_is_refused(allowed, message):
    with pytest.raises(ValueError, match=message):
        TokenDecoder([8, 8], allowed=allowed)


def test_masks_need_the_sample_feed_and_a_small_space():
    with pytest.raises(ValueError, match="feed='sample'"):
        TokenDecoder([8, 8], feed="softmax", allowed=np.ones((8, 8), dtype=bool))
    with pytest.raises(ValueError, match="more than"):
        prefix_masks(np.ones(1, dtype=bool), [8] * 8)


def test_the_env_allows_exactly_the_cells_within_the_budget():
    env = gym.make("NASCell-small-v0", reward="param")
    allowed = env.unwrapped.allowed_actions()
    assert allowed.shape == (8, 8) and 0 < allowed.sum() < 64
    for a, b in itertools.product(range(8), range(8)):
        env.reset(seed=0)
        _, reward, _, _, info = env.step([a, b])
        assert info["budget_met"] == allowed[a, b]
        assert (reward > R_PARAM_PENALTY) == allowed[a, b]
    assert gym.make("NASCell-small-v0").unwrapped.allowed_actions().all()


def test_a_five_block_large_space_is_too_big_to_enumerate():
    env = gym.make("NASCell-large-v0", reward="param", evaluator="live", protocol="cheap")
    with pytest.raises(ValueError, match="more than"):
        env.unwrapped.allowed_actions()


def test_a_masked_search_never_proposes_an_over_budget_cell_and_reloads_with_its_mask(tmp_path):
    env = PenaltyToFloor(gym.make("NASCell-small-v0", reward="param"))   # through a wrapper
    allowed = env.unwrapped.allowed_actions()
    model = make_ppo(env, seed=0, mask_over_budget=True)
    model.learn(20 * 3)
    actions = model.rollout_buffer.actions.reshape(-1, 2).astype(int)
    assert allowed[actions[:, 0], actions[:, 1]].all()
    model.save(tmp_path / "model.zip")
    loaded = SearchPPO.load(tmp_path / "model.zip")
    assert loaded.policy.decoder.masked
    sampled, _ = loaded.policy.decoder.decode(500)
    assert allowed[sampled[:, 0].numpy(), sampled[:, 1].numpy()].all()


def test_masking_needs_the_autoregressive_policy():
    with pytest.raises(ValueError, match="autoregressive"):
        make_ppo(gym.make("NASCell-small-v0", reward="param"), seed=0, policy="mlp",
                 mask_over_budget=True)
