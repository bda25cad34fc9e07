"""The controller of Arora & Krone as a Stable-Baselines3 policy: ``PPO(AutoregressiveLSTMPolicy, env)``.

The NAS env is a one-step MDP: the observation is constant, one action is a whole architecture
(a ``MultiDiscrete`` vector of tokens) and the episode ends after it. The policy has two parts
that share nothing, so they cannot fight over the LSTM:

- the actor, a :class:`~agents.token_decoder.TokenDecoder`: an LSTM unrolled once per token with
  one softmax head per token, started from a learned vector. It ignores the observation (which is
  constant in this MDP), so the action distribution is the same for every observation;
- the critic: SB3's ``MlpExtractor`` value branch (``net_arch``) and ``value_net`` over the
  observation features. For a constant observation it learns a scalar, which SB3's advantage
  normalisation then removes, so it does not change what the actor learns (measured in
  ``docs/tuning.md``); it is there because SB3's actor-critic interface needs a value.

Example::

    from stable_baselines3 import PPO
    from agents import AutoregressiveLSTMPolicy

    model = PPO(AutoregressiveLSTMPolicy, env, policy_kwargs=dict(lstm_hidden_size=100, feed="sample"))
    model.learn(10_000)
    action, _ = model.predict(obs, deterministic=True)  # greedy decode

``RecurrentPPO`` is not the tool here: its LSTM carries state across env steps, while this one
unrolls inside a single action.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import MlpExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from .distributions import AutoregressiveCategoricalDistribution

DEFAULT_CRITIC_ARCH = [64]
"""Hidden layers of the value baseline when ``net_arch`` is not given."""


def check_action_space(action_space: spaces.Space) -> None:
    """Raise ``ValueError`` unless ``action_space`` is one the policy can drive."""
    if not isinstance(action_space, spaces.MultiDiscrete):
        raise ValueError(
            f"AutoregressiveLSTMPolicy supports only MultiDiscrete action spaces (one token per "
            f"entry of nvec), got {action_space}. Use SB3's MlpPolicy for Discrete, Box or "
            f"MultiBinary actions, or encode the architecture as a MultiDiscrete vector."
        )
    if action_space.nvec.ndim != 1:
        raise ValueError(
            f"AutoregressiveLSTMPolicy needs a MultiDiscrete space with a 1-D nvec, got nvec of "
            f"shape {action_space.nvec.shape}; flatten the tokens into one vector."
        )
    if np.any(action_space.start != 0):
        raise ValueError(
            f"AutoregressiveLSTMPolicy needs tokens that start at 0, got start={action_space.start.tolist()}; "
            f"shift the env's tokens to start at 0."
        )


def critic_arch(net_arch: list[int] | dict[str, list[int]] | None) -> dict[str, list[int]]:
    """Normalise ``net_arch`` (the critic's hidden layers) to SB3's ``dict(pi=[], vf=[...])``."""
    if net_arch is None:
        return dict(pi=[], vf=list(DEFAULT_CRITIC_ARCH))
    if isinstance(net_arch, dict):
        if net_arch.get("pi"):
            raise ValueError(
                f"net_arch={net_arch} asks for actor layers, but the actor is the LSTM; set its size "
                f"with lstm_hidden_size and give net_arch only the critic's layers (a list, or dict(vf=[...]))."
            )
        return dict(pi=[], vf=list(net_arch.get("vf", [])))
    return dict(pi=[], vf=list(net_arch))


class AutoregressiveLSTMPolicy(ActorCriticPolicy):
    """Actor-critic policy whose actor writes a ``MultiDiscrete`` action token by token with an LSTM.

    :param observation_space: observation space (used by the critic only)
    :param action_space: a ``MultiDiscrete`` space; any other space raises ``ValueError``
    :param lr_schedule: learning rate schedule
    :param net_arch: the critic's hidden layers, a list or ``dict(vf=[...])`` (default ``[64]``)
    :param activation_fn: the critic's activation
    :param ortho_init: SB3's orthogonal initialisation of the critic; the softmax heads are
        always initialised with a small gain, so the first policy is near uniform
    :param lstm_hidden_size: LSTM hidden units (100 in the paper)
    :param feed: the LSTM's next input: ``"sample"`` (an embedding of the token just picked; a
        truly autoregressive distribution) or ``"softmax"`` (the paper: the softmax vector, which
        does not depend on the picked token, so the joint distribution factorises)
    :param embedding_dim: token embedding size for ``feed="sample"`` (default ``lstm_hidden_size``)
    :param allowed_actions: ``None`` (every action), or a boolean array (or nested lists) of shape
        ``nvec``, ``feed="sample"`` only: the policy writes only the actions marked ``True``, each
        token masked to the choices some allowed action continues with (an env's
        ``allowed_actions()``, e.g. the cells within an r_param size budget). Saved with the model.
    :param kwargs: passed on to ``ActorCriticPolicy`` (features extractor, optimizer, ...)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        lstm_hidden_size: int = 100,
        feed: str = "sample",
        embedding_dim: int | None = None,
        allowed_actions=None,
        **kwargs: Any,
    ) -> None:
        check_action_space(action_space)
        if use_sde:
            raise ValueError("AutoregressiveLSTMPolicy has discrete actions; gSDE does not apply, so pass use_sde=False.")
        # _build runs inside ActorCriticPolicy.__init__ and needs these.
        self.lstm_hidden_size = int(lstm_hidden_size)
        self.feed = feed
        self.embedding_dim = embedding_dim
        # Kept as nested lists of bools, so the saved model's constructor arguments stay plain data.
        self.allowed_actions = None if allowed_actions is None else np.asarray(allowed_actions, dtype=bool).tolist()
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=critic_arch(net_arch),
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=False,
            **kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(lstm_hidden_size=self.lstm_hidden_size, feed=self.feed, embedding_dim=self.embedding_dim,
                    allowed_actions=self.allowed_actions)
        return data

    def _build(self, lr_schedule: Schedule) -> None:
        """Create the decoder (actor), the value baseline (critic) and the optimizer."""
        self.mlp_extractor = MlpExtractor(
            self.features_dim, net_arch=self.net_arch, activation_fn=self.activation_fn, device=self.device
        )
        self.action_dist = AutoregressiveCategoricalDistribution(self.action_space.nvec.tolist())
        self.decoder = self.action_dist.proba_distribution_net(
            hidden_size=self.lstm_hidden_size, feed=self.feed, embedding_dim=self.embedding_dim,
            allowed=self.allowed_actions,
        )
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            module_gains = {
                self.pi_features_extractor: np.sqrt(2),
                self.vf_features_extractor: np.sqrt(2),
                self.mlp_extractor: np.sqrt(2),
                self.value_net: 1.0,
            }
            for module, gain in module_gains.items():
                module.apply(partial(self.init_weights, gain=gain))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)  # type: ignore[call-arg]

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Decode actions (sampled, or greedy if ``deterministic``).

        :return: actions ``(batch, T)``, values ``(batch, 1)`` and log-probabilities ``(batch,)``
        """
        values = self.predict_values(obs)
        actions, log_prob = self._distribution(values.shape[0]).decode(deterministic=deterministic)
        return actions, values, log_prob

    def evaluate_actions(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Re-score given actions by teacher forcing.

        :param obs: observations
        :param actions: ``(batch, T)`` actions (floats from PPO's rollout buffer are fine)
        :return: values ``(batch, 1)``, log-probabilities ``(batch,)`` and the sum of per-token
            entropies along the given actions ``(batch,)`` (see :mod:`agents.distributions`)
        """
        values = self.predict_values(obs)
        distribution = self._distribution(actions.shape[0])
        log_prob = distribution.log_prob(actions)
        return values, log_prob, distribution.entropy()

    def get_distribution(self, obs: PyTorchObs) -> AutoregressiveCategoricalDistribution:
        """The action distribution for a batch of observations.

        :return: an :class:`~agents.distributions.AutoregressiveCategoricalDistribution` bound to
            the decoder, for ``len(obs)`` actions; its ``sample()``, ``mode()`` and ``log_prob()``
            run the decoder
        """
        return self._distribution(_batch_size(obs))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """Actions for ``observation``; ``deterministic`` decodes greedily (argmax at each step)."""
        return self.get_distribution(observation).get_actions(deterministic=deterministic)

    def _distribution(self, batch_size: int) -> AutoregressiveCategoricalDistribution:
        return self.action_dist.proba_distribution(self.decoder, batch_size)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        """Not available: the actor is the LSTM decoder, which reads no observation features, so
        there is no actor latent. Use :meth:`get_distribution`, :meth:`forward` or
        :meth:`evaluate_actions`."""
        raise NotImplementedError(_NO_LATENT.format("forward_actor"))

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor):
        """Not available, as :meth:`forward_actor`; use :meth:`get_distribution`."""
        raise NotImplementedError(_NO_LATENT.format("_get_action_dist_from_latent"))


_NO_LATENT = ("AutoregressiveLSTMPolicy.{} does not exist: the actor is an LSTM decoder that reads "
              "no observation features, so there is no actor latent and no action_net. Use "
              "get_distribution(obs), forward(obs) or evaluate_actions(obs, actions).")


def _batch_size(obs: PyTorchObs) -> int:
    if isinstance(obs, dict):
        return next(iter(obs.values())).shape[0]
    return obs.shape[0]
