"""The autoregressive LSTM controller against SB3's policy contract, on a toy one-step bandit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

from agents import AutoregressiveLSTMPolicy
from agents.toy_bandit import MultiDiscreteBandit, two_token_rewards

FEEDS = ("sample", "softmax")
A_SMALL = (8, 8)
A_LARGE_LIKE = (1, 1, 8, 8, 2, 2, 8, 8)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: intra-op threads only add contention (badly so on a busy machine)."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


def make_model(nvec=A_SMALL, feed="sample", seed=0, **kwargs) -> PPO:
    env = MultiDiscreteBandit(np.zeros(nvec))
    kwargs.setdefault("n_steps", 16)
    kwargs.setdefault("batch_size", 16)
    return PPO(
        AutoregressiveLSTMPolicy, env, policy_kwargs=dict(feed=feed), seed=seed, device="cpu", **kwargs
    )


def obs_batch(n: int) -> th.Tensor:
    return th.zeros(n, 1)


def all_actions(nvec) -> th.Tensor:
    return th.tensor(list(itertools.product(*(range(n) for n in nvec))), dtype=th.float32)


@pytest.mark.parametrize("feed", FEEDS)
def test_forward_log_prob_equals_evaluate_actions(feed):
    policy = make_model(A_LARGE_LIKE, feed).policy
    actions, values, log_prob = policy(obs_batch(64))
    assert actions.shape == (64, len(A_LARGE_LIKE)) and values.shape == (64, 1) and log_prob.shape == (64,)
    # PPO hands the actions back as floats from its rollout buffer.
    values2, log_prob2, entropy = policy.evaluate_actions(obs_batch(64), actions.float())
    th.testing.assert_close(log_prob2, log_prob, rtol=0, atol=1e-5)
    th.testing.assert_close(values2, values)
    assert entropy.shape == (64,) and th.all(entropy > 0)


@pytest.mark.parametrize("feed", FEEDS)
def test_first_ppo_epoch_has_zero_kl_and_no_clipping(feed):
    model = make_model(feed=feed, n_epochs=1)
    model.set_env(MultiDiscreteBandit(two_token_rewards()))
    recorded = {}

    class Recorder(Logger):
        def record(self, key, value, exclude=None):
            recorded[key] = value

    model.set_logger(Recorder(folder=None, output_formats=[]))
    model.learn(16)
    assert abs(recorded["train/approx_kl"]) < 1e-6
    assert recorded["train/clip_fraction"] == 0.0


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("nvec", [A_SMALL, A_LARGE_LIKE], ids=["A_small", "A_large_like"])
def test_probabilities_of_all_actions_sum_to_one(feed, nvec):
    policy = make_model(nvec, feed).policy
    # Move off the near-uniform start so the check is not trivial.
    with th.no_grad():
        for p in policy.decoder.parameters():
            p.add_(th.randn_like(p))
    actions = all_actions(nvec)
    with th.no_grad():
        _, log_prob, _ = policy.evaluate_actions(obs_batch(len(actions)), actions)
    assert log_prob.exp().sum().item() == pytest.approx(1.0, abs=1e-5)
    assert log_prob.exp().std() > 1e-4


def score_all_small_cells_of_a_random_controller(feed: str) -> tuple[th.Tensor, th.Tensor]:
    """Log-probabilities and path entropies of all 64 A_small actions under a controller whose
    weights are pushed far from the near-uniform initialisation."""
    policy = make_model(A_SMALL, feed).policy
    with th.no_grad():
        for p in policy.decoder.parameters():
            p.add_(th.randn_like(p))
        actions = all_actions(A_SMALL)
        _, log_prob, entropy = policy.evaluate_actions(obs_batch(len(actions)), actions)
    return log_prob, entropy


def test_softmax_feed_entropy_is_exact_joint_entropy():
    log_prob, entropy = score_all_small_cells_of_a_random_controller("softmax")
    joint = -(log_prob.exp() * log_prob).sum()
    th.testing.assert_close(entropy, joint.expand(len(log_prob)), rtol=0, atol=1e-4)


def test_sample_feed_entropy_is_unbiased_for_joint_entropy():
    """E over the policy's own actions of the path entropy equals the joint entropy (chain rule)."""
    log_prob, entropy = score_all_small_cells_of_a_random_controller("sample")
    probs = log_prob.exp()
    assert entropy.std() > 1e-3  # the estimate depends on the path ...
    joint = -(probs * log_prob).sum()
    assert (probs * entropy).sum().item() == pytest.approx(joint.item(), abs=1e-4)  # ... but is unbiased


@pytest.mark.parametrize("feed", FEEDS)
def test_gradients_reach_every_parameter(feed):
    policy = make_model(A_LARGE_LIKE, feed).policy
    obs = th.ones(32, 1)  # a zero observation would give the critic's first weights no gradient
    actions, _, _ = policy(obs)
    values, log_prob, entropy = policy.evaluate_actions(obs, actions.float())
    (values.sum() + (log_prob * th.randn(32)).sum() + entropy.sum()).backward()
    single_choice_heads = {f"decoder.heads.{t}." for t, n in enumerate(A_LARGE_LIKE) if n == 1}
    for name, param in policy.named_parameters():
        grad_norm = 0.0 if param.grad is None else param.grad.norm().item()
        if any(name.startswith(prefix) for prefix in single_choice_heads):
            assert grad_norm == 0.0, name  # log_softmax of one choice is constant 0
        else:
            assert grad_norm > 0.0, name


def test_actor_and_critic_share_no_parameters():
    policy = make_model().policy
    actor = {id(p) for p in policy.decoder.parameters()}
    critic = {id(p) for p in (*policy.mlp_extractor.parameters(), *policy.value_net.parameters())}
    assert not actor & critic
    assert len(actor) + len(critic) == len(list(policy.parameters()))


@pytest.mark.parametrize("feed", FEEDS)
def test_ppo_learns_a_bandit_whose_best_arm_needs_both_tokens(feed):
    env = MultiDiscreteBandit(two_token_rewards(best=(5, 2)))
    model = PPO(
        AutoregressiveLSTMPolicy, env, n_steps=64, batch_size=64, n_epochs=4, learning_rate=3e-3,
        policy_kwargs=dict(feed=feed), seed=1, device="cpu",
    )
    model.learn(3000)
    action, _ = model.predict(np.zeros(1, np.float32), deterministic=True)
    assert action.tolist() == [5, 2]
    with th.no_grad():
        _, log_prob, _ = model.policy.evaluate_actions(obs_batch(1), th.tensor([[5.0, 2.0]]))
    assert log_prob.exp().item() > 0.5


@pytest.mark.parametrize("feed", FEEDS)
def test_save_load_round_trip(tmp_path, feed):
    embedding_dim = None if feed == "softmax" else 12
    model = PPO(
        AutoregressiveLSTMPolicy, MultiDiscreteBandit(np.zeros(A_LARGE_LIKE)), n_steps=16, batch_size=16,
        n_epochs=2, policy_kwargs=dict(feed=feed, lstm_hidden_size=24, embedding_dim=embedding_dim),
        seed=0, device="cpu",
    )
    model.learn(32)
    actions = all_actions(A_LARGE_LIKE)[::97]
    obs = np.zeros(1, np.float32)
    with th.no_grad():
        _, log_prob, _ = model.policy.evaluate_actions(obs_batch(len(actions)), actions)
    greedy, _ = model.predict(obs, deterministic=True)

    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert loaded.policy.decoder.hidden_size == 24 and loaded.policy.feed == feed
    with th.no_grad():
        _, log_prob2, _ = loaded.policy.evaluate_actions(obs_batch(len(actions)), actions)
    th.testing.assert_close(log_prob2, log_prob)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], greedy)

    model.policy.save(tmp_path / "policy.pt")
    policy = AutoregressiveLSTMPolicy.load(tmp_path / "policy.pt", device="cpu")
    with th.no_grad():
        _, log_prob3, _ = policy.evaluate_actions(obs_batch(len(actions)), actions)
    th.testing.assert_close(log_prob3, log_prob)


@pytest.mark.parametrize("feed", FEEDS)
def test_greedy_decode_follows_the_argmax_path(feed):
    policy = make_model(A_LARGE_LIKE, feed).policy
    with th.no_grad():
        for p in policy.decoder.parameters():
            p.add_(th.randn_like(p))
        greedy = policy.get_distribution(obs_batch(3)).mode()
        tables = policy.decoder.token_log_probs(greedy)
    assert th.equal(greedy, tables.argmax(dim=2))
    assert th.equal(greedy[0], greedy[1]) and th.equal(greedy[0], greedy[2])
    action, _ = policy.predict(np.zeros(1, np.float32), deterministic=True)
    assert action.tolist() == greedy[0].tolist()


def test_get_distribution_follows_sb3_interface():
    policy = make_model(A_SMALL).policy
    distribution = policy.get_distribution(obs_batch(5))
    th.manual_seed(0)
    actions = distribution.sample()
    assert actions.shape == (5, 2) and actions.dtype == th.long
    assert th.all(actions < th.tensor(A_SMALL))
    th.testing.assert_close(distribution.log_prob(actions), distribution.log_prob(actions.float()))
    assert distribution.entropy().shape == (5,)
    assert th.equal(distribution.get_actions(deterministic=True), distribution.mode())


def test_sb3_methods_that_need_an_actor_latent_say_what_to_use_instead():
    policy = make_model(A_SMALL).policy
    features = policy.extract_features(obs_batch(2), policy.vf_features_extractor)
    with pytest.raises(NotImplementedError, match="forward_actor does not exist.*get_distribution"):
        policy.forward_actor(features)
    with pytest.raises(NotImplementedError, match="no action_net"):
        policy._get_action_dist_from_latent(features)


@pytest.mark.parametrize(
    "action_space",
    [spaces.Discrete(5), spaces.Box(-1, 1, (2,)), spaces.MultiBinary(3), spaces.MultiDiscrete([[2, 3], [4, 5]])],
    ids=["Discrete", "Box", "MultiBinary", "MultiDiscrete-2d"],
)
def test_unsupported_action_spaces_raise(action_space):
    with pytest.raises(ValueError, match="MultiDiscrete"):
        AutoregressiveLSTMPolicy(spaces.Box(0, 1, (1,)), action_space, lambda _: 1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(feed="embedding"), "feed='embedding' is not supported"),
        (dict(feed="softmax", embedding_dim=8), "embedding_dim only applies"),
        (dict(net_arch=dict(pi=[64], vf=[64])), "the actor is the LSTM"),
        (dict(use_sde=True), "gSDE"),
    ],
)
def test_conflicting_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AutoregressiveLSTMPolicy(spaces.Box(0, 1, (1,)), spaces.MultiDiscrete(A_SMALL), lambda _: 1e-3, **kwargs)


def test_fused_adam_is_the_same_algorithm_up_to_rounding():
    from pathlib import Path

    import gymnasium as gym

    import nas_env  # noqa: F401
    from agents.ppo_search import make_ppo

    fixture = Path(__file__).resolve().parent / "fixtures" / "small_fixture.csv"
    params = {}
    for fused in (False, True):
        model = make_ppo(gym.make("NASCell-small-v0", table_path=str(fixture)), seed=0,
                         fused_adam=fused)
        assert model.policy.optimizer.defaults["fused"] is (True if fused else None)
        assert model.policy.optimizer.defaults["eps"] == 1e-5
        model.learn(3 * 20)
        params[fused] = th.cat([p.detach().flatten() for p in model.policy.parameters()])
    assert th.allclose(params[False], params[True], atol=1e-5)


def test_learn_flushes_denormals_only_while_it_runs():
    from pathlib import Path

    import gymnasium as gym

    import nas_env  # noqa: F401
    from agents.ppo_search import make_ppo

    if not th.set_flush_denormal(False):  # returns whether this CPU can flush at all
        pytest.skip("this CPU cannot flush denormals")
    fixture = Path(__file__).resolve().parent / "fixtures" / "small_fixture.csv"
    tiny = th.tensor([1e-40])  # a denormal float32
    seen = []
    model = make_ppo(gym.make("NASCell-small-v0", table_path=str(fixture)), seed=0)
    assert model.flush_denormal is True
    original = model.train

    def train():
        seen.append(float(tiny * 1.0))  # 0 while denormals are flushed
        original()

    model.train = train
    model.learn(2 * 20)
    assert seen and all(v == 0.0 for v in seen)
    assert float(tiny * 1.0) > 0.0  # the process's mode is back to torch's default
