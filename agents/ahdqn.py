"""AH-DQN: a DQN agent whose Q-network is the action head.

After Spotify's "Automatic Music Playlist Generation via Simulation-based
Reinforcement Learning" (KDD 2023). The agent is TF-Agents' `DqnAgent` (or
`DdqnAgent` for double DQN: the online network picks the next action, the
target network values it) over an `agents.networks.ActionHeadQNetwork`, with

* a target network updated every `target_update_period` train steps;
* epsilon-greedy exploration that draws only available candidates: the
  observation-and-action-constraint splitter hands TF-Agents the
  observation's `candidate_mask`, which the greedy, the epsilon-greedy and
  the target policies all respect;
* optional n-step returns (`n_step_update`; sample n + 1 steps from the
  replay buffer).

Because the action head scores any number of candidates, the TD loss
evaluates Q(s, a) on the chosen candidate alone (the observation cut to one
candidate) instead of scoring all K and picking one: the forward and backward
passes of the loss shrink K-fold, which is most of a train step's cost.
With plain (not double) DQN the target is one masked max over the target
network's scores.

With `bootstrap="score_greedy"` (`ScoreGreedyBootstrapAgent`) the target
follows greedy-by-the-learned-model instead of the max of Q: the agent
learns the value of that baseline and acts one step better than it. With a
Q head that is a residual over the same scores (`score_residual`), the agent
starts as greedy-by-the-model and only learns where sequencing changes the
choice; configs/ahdqn.gin uses both in the calibrated world (docs/agents.md),
with the learned model's one-step lookahead of each candidate
(`agents.lookahead_features`) as a head input and, with `lookahead_weight`,
as a fixed term of Q: the agent starts as the model's lookahead policy.

`make_q_agent` is the shared wiring; `agents.dqn` uses it with a plain
`QNetwork` over fixed pool slots (scoring all slots, as DQN must).
"""

import functools
from typing import Callable, Sequence

import gin
import numpy as np
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.networks import network
from tf_agents.trajectories import time_step as ts
from tf_agents.typing import types
from tf_agents.utils import common

from agents.networks import ActionHeadQNetwork, HEAD_CANDIDATE_INPUTS
from agents.networks import MASKED_Q_VALUE
from agents.networks import OPTIONAL_CANDIDATE_KEYS, shortlist_mask

#: Observation key of the scores the `score_greedy` bootstrap follows.
SCORE_BOOTSTRAP_KEY = OPTIONAL_CANDIDATE_KEYS[0]
#: TD targets of `make_q_agent`: the max of Q (DQN, or double DQN), or Q of
#: greedy-by-the-scores (`ScoreGreedyBootstrapAgent`).
BOOTSTRAPS = ("max", "score_greedy")

__all__ = ["ActionHeadDdqnAgent", "ActionHeadDqnAgent", "BOOTSTRAPS",
           "SCORE_BOOTSTRAP_KEY", "ScoreGreedyBootstrapAgent",
           "candidate_mask_splitter", "create_ahdqn_agent", "make_q_agent",
           "shortlist_splitter"]


def candidate_mask_splitter(observation: dict) -> tuple[dict, tf.Tensor]:
  """TF-Agents' action-constraint splitter for playlist observations.

  The network keeps the whole observation (it masks, too); the mask of
  candidates still available is the constraint.

  Args:
    observation: a playlist observation (nest of tensors or specs).

  Returns:
    (observation, observation["candidate_mask"]).
  """
  return observation, observation["candidate_mask"]


def _chosen_candidate_q(q_network: network.Network, observation: dict,
                        slots: tf.Tensor, step_type: tf.Tensor,
                        training: bool = False) -> tf.Tensor:
  """Q of one pool slot per row, scoring that candidate alone.

  Args:
    q_network: an action-head network (scores any number of candidates).
    observation: a batch of playlist observations.
    slots: int [B] (or [B, T]) pool slots, available in their rows.
    step_type: the time steps' step types.
    training: passed to the network.

  Returns:
    float [B] (or [B, T]) Q values.
  """
  slots = tf.cast(slots, tf.int32)[..., None]
  chosen = tf.gather(observation["candidate_ids"], slots,
                     batch_dims=slots.shape.rank - 1)
  # The slot is available (the policies respect the mask), so it is scored
  # unmasked.
  single = dict(observation, candidate_ids=chosen,
                candidate_mask=tf.ones_like(chosen, tf.bool))
  for key in OPTIONAL_CANDIDATE_KEYS:
    if key in observation:
      single[key] = tf.gather(observation[key], slots,
                              batch_dims=slots.shape.rank - 1)
  q_values, _ = q_network(single, step_type=step_type, training=training)
  return q_values[..., 0]


def shortlist_splitter(shortlist_size: int
                       ) -> Callable[[dict], tuple[dict, tf.Tensor]]:
  """A splitter whose constraint is the score's shortlist (see networks).

  With it the epsilon-greedy collect policy explores among the learned
  model's `shortlist_size` best candidates, the only ones the agent may
  choose, so the replay holds the comparisons the agent has to make.

  Args:
    shortlist_size: candidates kept per row.

  Returns:
    observation -> (observation, shortlist mask).
  """

  def splitter(observation: dict) -> tuple[dict, tf.Tensor]:
    if isinstance(observation["candidate_mask"], tf.TypeSpec):
      return candidate_mask_splitter(observation)  # Specs: same shape.
    mask = shortlist_mask(tf.cast(observation["candidate_mask"], tf.bool),
                          observation[SCORE_BOOTSTRAP_KEY], shortlist_size)
    return observation, mask
  return splitter


class _ChosenCandidateQ:
  """Mixin: Q(s, a) of the taken actions from the chosen candidates alone."""

  def _compute_q_values(self, time_steps, actions, training=False):
    return _chosen_candidate_q(self._q_network, time_steps.observation,
                               actions, time_steps.step_type, training)


class ActionHeadDqnAgent(_ChosenCandidateQ, dqn_agent.DqnAgent):
  """`DqnAgent` for an action-head network (see module docstring)."""

  def _compute_next_q_values(self, next_time_steps, info):
    del info
    observation, mask = candidate_mask_splitter(next_time_steps.observation)
    q_values, _ = self._target_q_network(observation,
                                         step_type=next_time_steps.step_type)
    # The max over available candidates is the target greedy policy's value;
    # a row with none left is terminal (discount 0), any finite value will do.
    return tf.reduce_max(
        tf.where(tf.cast(mask, tf.bool), q_values,
                 tf.constant(MASKED_Q_VALUE, q_values.dtype)), axis=-1)


class ActionHeadDdqnAgent(_ChosenCandidateQ, dqn_agent.DdqnAgent):
  """`DdqnAgent` for an action-head network (see module docstring)."""


class ScoreGreedyBootstrapAgent(_ChosenCandidateQ, dqn_agent.DqnAgent):
  """Learns Q of greedy-by-the-learned-model; acts greedily on it.

  The TD target bootstraps from the candidate with the highest
  `candidate_scores` (the learned model's P(listen)), not from the max of
  Q: the network learns Q^g(s, a), the return of playing a and then
  following greedy-by-the-model, and the agent's greedy policy,
  argmax_a Q^g(s, a), is one step of policy improvement over that baseline
  (a rollout policy). Evaluating a fixed policy has no max over noisy
  estimates (no overestimation) and a lower-variance target than Q-learning,
  which is what lets a small sequencing gain show through.
  """

  def __init__(self, *args, expected_reward: float | None = None,
               **kwargs):
    """`DqnAgent`'s arguments, and:

    Args:
      *args: see `dqn_agent.DqnAgent`.
      expected_reward: if set (the reward of a listen), the TD target's
        reward is `expected_reward * candidate_scores` of the taken
        candidate, its expectation in a simulator that draws outcomes from
        the scoring model, instead of the drawn 0/1 outcome: the Bernoulli
        noise of the reward leaves the target (1-step returns only).
      **kwargs: see `dqn_agent.DqnAgent`.
    """
    super().__init__(*args, **kwargs)
    self._expected_reward = expected_reward
    if expected_reward is not None:
      # DqnAgent keeps its trajectory-to-transition converter as an
      # attribute; the expected reward is put in after it.
      converter = self._as_transition
      self._as_transition = lambda value: self._with_expected_reward(
          converter(value))

  def _with_expected_reward(self, transition):
    """`transition` with the taken candidate's expected reward."""
    time_steps, policy_steps, next_time_steps = transition
    slots = tf.cast(policy_steps.action, tf.int32)[..., None]
    scores = tf.gather(time_steps.observation[SCORE_BOOTSTRAP_KEY], slots,
                       batch_dims=slots.shape.rank - 1)[..., 0]
    reward = self._expected_reward * tf.cast(scores,
                                             next_time_steps.reward.dtype)
    return transition._replace(next_time_step=next_time_steps._replace(
        reward=reward))

  def _compute_next_q_values(self, next_time_steps, info):
    del info
    observation = next_time_steps.observation
    scores = tf.where(tf.cast(observation["candidate_mask"], tf.bool),
                      tf.cast(observation[SCORE_BOOTSTRAP_KEY], tf.float32),
                      -1.0)
    # A row with no candidate left is terminal (discount 0): any slot does.
    slots = tf.argmax(scores, axis=-1, output_type=tf.int32)
    return _chosen_candidate_q(self._target_q_network, observation, slots,
                               next_time_steps.step_type)


def make_q_agent(time_step_spec: ts.TimeStep,
                 action_spec: types.NestedTensorSpec,
                 q_network: network.Network,
                 optimizer: tf.keras.optimizers.Optimizer,
                 epsilon_greedy: float | Callable[[], float] = 0.1,
                 n_step_update: int = 1,
                 double_dqn: bool = True,
                 gamma: float = 0.9,
                 target_update_period: int = 100,
                 target_update_tau: float = 1.0,
                 gradient_clipping: float | None = None,
                 td_errors_loss_fn: Callable | None = None,
                 train_step_counter: tf.Variable | None = None,
                 action_head: bool = False,
                 bootstrap: str = "max",
                 expected_reward: float | None = None,
                 explore_shortlist: int | None = None,
                 name: str | None = None) -> dqn_agent.DqnAgent:
  """A (double) DQN agent that respects the candidate mask.

  Args:
    time_step_spec: the environment's time step spec (tensor specs).
    action_spec: the discrete action spec (pool slots).
    q_network: maps observations to Q values [B, K].
    optimizer: the optimizer.
    epsilon_greedy: exploration rate of the collect policy, or a callable
      returning it (a schedule).
    n_step_update: steps of the n-step return.
    double_dqn: use `DdqnAgent`'s double-Q targets.
    gamma: discount.
    target_update_period: train steps between target network updates.
    target_update_tau: weight of the online network in each update (1 is a
      hard copy).
    gradient_clipping: global-norm clipping, or None.
    td_errors_loss_fn: element-wise TD loss; default Huber.
    train_step_counter: the global step variable.
    action_head: the network scores any number of candidates
      (`ActionHeadQNetwork`): use the agents that score only the chosen one.
    bootstrap: one of `BOOTSTRAPS`: "max" (Q-learning; `double_dqn` picks
      double DQN) or "score_greedy" (`ScoreGreedyBootstrapAgent`; needs
      `action_head` and `candidate_scores` in the observation).
    expected_reward: with "score_greedy" and 1-step returns, train on the
      expected reward (see `ScoreGreedyBootstrapAgent`).
    explore_shortlist: if set, the action constraint is the scores'
      shortlist of this size (`shortlist_splitter`), so exploration stays
      among the candidates a shortlisting network can choose.
    name: the agent's name.

  Returns:
    An initialised agent.

  Raises:
    ValueError: for an unknown bootstrap, "score_greedy" without an
      action head or without the scores in the observation, or an
      `expected_reward` without "score_greedy" and 1-step returns.
  """
  if bootstrap not in BOOTSTRAPS:
    raise ValueError(f"bootstrap must be one of {BOOTSTRAPS}, got "
                     f"{bootstrap!r}")
  if expected_reward is not None and (bootstrap != "score_greedy" or
                                     n_step_update != 1 or
                                     not np.isfinite(expected_reward)):
    raise ValueError(
        f"expected_reward = {expected_reward!r} needs a finite value, "
        f"bootstrap = 'score_greedy' (got {bootstrap!r}) and n_step_update "
        f"= 1 (got {n_step_update}); or set expected_reward = None")
  if bootstrap == "score_greedy":
    if not action_head or (SCORE_BOOTSTRAP_KEY not in
                           time_step_spec.observation):
      raise ValueError(
          "bootstrap = 'score_greedy' needs an action-head network and "
          f"{SCORE_BOOTSTRAP_KEY!r} in the observation (train_eval."
          "user_model_scores = True); use bootstrap = 'max' otherwise")
    agent_cls = functools.partial(ScoreGreedyBootstrapAgent,
                                  expected_reward=expected_reward)
  elif action_head:
    agent_cls = ActionHeadDdqnAgent if double_dqn else ActionHeadDqnAgent
  else:
    agent_cls = dqn_agent.DdqnAgent if double_dqn else dqn_agent.DqnAgent
  agent = agent_cls(
      time_step_spec,
      action_spec,
      q_network=q_network,
      optimizer=optimizer,
      observation_and_action_constraint_splitter=(
          candidate_mask_splitter if explore_shortlist is None else
          shortlist_splitter(explore_shortlist)),
      epsilon_greedy=epsilon_greedy,
      n_step_update=n_step_update,
      target_update_tau=target_update_tau,
      target_update_period=target_update_period,
      td_errors_loss_fn=td_errors_loss_fn or common.element_wise_huber_loss,
      gamma=gamma,
      gradient_clipping=gradient_clipping,
      train_step_counter=train_step_counter,
      name=name)
  agent.initialize()
  return agent


# The network's form is chosen in gin (configs/ahdqn.gin); every other
# hyperparameter comes from `train_eval`'s arguments.
@gin.configurable(allowlist=["score_residual", "score_weight",
                             "advantage_scale", "lookahead_weight",
                             "bootstrap",
                             "shortlist_size", "expected_reward",
                             "head_candidate_inputs"])
def create_ahdqn_agent(time_step_spec: ts.TimeStep,
                       action_spec: types.NestedTensorSpec,
                       track_features: np.ndarray,
                       optimizer: tf.keras.optimizers.Optimizer,
                       embedding_dim: int = 32,
                       state_layers: Sequence[int] = (64,),
                       head_layers: Sequence[int] = (64, 64),
                       history_decay: float = 0.8,
                       score_residual: bool = False,
                       score_weight: float = 1.0,
                       advantage_scale: float = 1.0,
                       lookahead_weight: float = 0.0,
                       bootstrap: str = "max",
                       shortlist_size: int | None = None,
                       expected_reward: bool = False,
                       head_candidate_inputs: Sequence[str] = (
                           HEAD_CANDIDATE_INPUTS),
                       **agent_kwargs) -> dqn_agent.DqnAgent:
  """The AH-DQN agent: `make_q_agent` over an `ActionHeadQNetwork`.

  Args:
    time_step_spec: the environment's time step spec (tensor specs).
    action_spec: the discrete action spec (pool slots).
    track_features: float [N, F] catalog feature table.
    optimizer: the optimizer.
    embedding_dim: see `ActionHeadQNetwork`.
    state_layers: see `ActionHeadQNetwork`.
    head_layers: see `ActionHeadQNetwork`.
    history_decay: see `ActionHeadQNetwork`.
    score_residual: see `ActionHeadQNetwork`: Q is a residual over the
      observation's `candidate_scores` (the agent starts greedy by the
      learned model and learns the sequencing correction).
    score_weight: see `ActionHeadQNetwork`.
    advantage_scale: see `ActionHeadQNetwork`.
    lookahead_weight: see `ActionHeadQNetwork`: the weight of the learned
      model's one-step lookahead (`agents.lookahead_features`) in Q.
    bootstrap: see `make_q_agent` ("score_greedy": learn Q of
      greedy-by-the-model and improve on it by one step).
    shortlist_size: see `ActionHeadQNetwork`: the agent re-ranks the
      learned model's top candidates only.
    expected_reward: train on `score_weight * candidate_scores` of the taken
      candidate instead of the drawn reward (see `make_q_agent`).
    head_candidate_inputs: see `ActionHeadQNetwork`.
    **agent_kwargs: passed to `make_q_agent` (epsilon, gamma, n-step...).

  Returns:
    An initialised agent.
  """
  q_net = ActionHeadQNetwork(time_step_spec.observation, track_features,
                             embedding_dim=embedding_dim,
                             state_layers=state_layers,
                             head_layers=head_layers,
                             history_decay=history_decay,
                             score_residual=score_residual,
                             score_weight=score_weight,
                             advantage_scale=advantage_scale,
                             lookahead_weight=lookahead_weight,
                             shortlist_size=shortlist_size,
                             head_candidate_inputs=head_candidate_inputs)
  return make_q_agent(time_step_spec, action_spec, q_net, optimizer,
                      action_head=True, bootstrap=bootstrap, name="ahdqn",
                      expected_reward=score_weight if expected_reward else None,
                      explore_shortlist=shortlist_size, **agent_kwargs)
