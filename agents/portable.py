"""Policies that run on their own: scores in the graph, plain TF outputs.

A policy trained with `train_eval.user_model_scores` reads
`candidate_scores` (the learned model's P(listen) of each candidate), which no
plain environment provides. `ScoredTFPolicy` computes them in its own graph
(`agents.graph_scores.GraphScorer`) before calling the trained policy, so its
time step spec is the environment's own; a policy that also reads the
model's one-step lookahead (`candidate_lookahead`,
`agents.lookahead_features`) gets that computed in the graph too.
`agents.export.export_policy` saves that policy with TF-Agents'
`PolicySaver` (without the `distribution` function, whose TensorFlow
Probability types a bare `tf.saved_model.load` cannot rebuild) plus a
`select_track` signature with readable input names:

    import tensorflow as tf
    policy = tf.saved_model.load("runs/ahdqn/policy")
    slots = policy.signatures["select_track"](**observation)["slot"]

`load_policy` loads an exported folder back as a TF-Agents `TFPolicy`.
"""

import os

import tensorflow as tf
from tf_agents.policies import tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from agents.graph_scores import GraphScorer
from agents.lookahead_features import LOOKAHEAD_KEY
from playlist_sim.policies.score_features import SCORE_KEY

__all__ = ["PolicyLoadError", "SELECT_TRACK", "ScoredTFPolicy",
           "load_policy", "observation_signature"]

#: Name of the exported signature `observation -> {"slot": [B] int32}`.
SELECT_TRACK = "select_track"


class PolicyLoadError(ValueError):
  """A folder that holds no exported policy."""


class ScoredTFPolicy(tf_policy.TFPolicy):
  """A policy over scored observations, run on the environment's own."""

  def __init__(self, policy: tf_policy.TFPolicy, user_model,
               lookahead_shortlist: int | None = None):
    """Wraps `policy`, whose observation has `candidate_scores`.

    Args:
      policy: a trained TF policy reading SCORE_KEY (and LOOKAHEAD_KEY).
      user_model: the CWM it was trained with (see `GraphScorer`).
      lookahead_shortlist: the shortlist of its `candidate_lookahead`
        (`agents.environments.scored_env`), for a policy that reads it.

    Raises:
      ValueError: if the policy's observation has no SCORE_KEY, or has
        LOOKAHEAD_KEY without a `lookahead_shortlist`.
      UnsupportedScorerError: if the user model cannot run in the graph.
    """
    spec = policy.time_step_spec
    if SCORE_KEY not in spec.observation:
      raise ValueError(f"ScoredTFPolicy wraps a policy that reads "
                       f"{SCORE_KEY!r}; this one's observation has "
                       f"{sorted(spec.observation)}")
    plain = dict(spec.observation)
    del plain[SCORE_KEY]
    self._lookahead_shortlist = None
    if LOOKAHEAD_KEY in plain:
      if lookahead_shortlist is None:
        raise ValueError(
            f"the policy reads {LOOKAHEAD_KEY!r}: pass the "
            "lookahead_shortlist it was trained with (scored_env."
            "lookahead_shortlist in its operative_config.gin)")
      del plain[LOOKAHEAD_KEY]
      self._lookahead_shortlist = int(lookahead_shortlist)
    listen_level = int(tf.reduce_max(
        spec.observation["history_responses"].maximum))
    self._inner = policy
    self._scorer = GraphScorer(user_model, listen_level)
    super().__init__(spec._replace(observation=plain), policy.action_spec,
                     policy_state_spec=policy.policy_state_spec,
                     info_spec=policy.info_spec, name="scored_policy")

  def _variables(self):
    return self._inner.variables() + list(self._scorer.model.variables)

  def _scored(self, time_step):
    obs = time_step.observation
    scores = self._scorer(obs)
    added = {SCORE_KEY: scores}
    if self._lookahead_shortlist is not None:
      added[LOOKAHEAD_KEY] = self._scorer.lookahead(
          obs, scores, self._lookahead_shortlist)
    return time_step._replace(observation=dict(obs, **added))

  def _action(self, time_step, policy_state, seed=None):
    return self._inner.action(self._scored(time_step), policy_state, seed)

  def _distribution(self, time_step, policy_state):
    return self._inner.distribution(self._scored(time_step), policy_state)


def observation_signature(
    policy: tf_policy.TFPolicy) -> tf.types.experimental.ConcreteFunction:
  """`select_track`: a batch of observations -> the greedy pool slots.

  The inputs are the observation's keys (batched), the output
  `{"slot": int32 [B]}` (the action: a slot of `candidate_ids`).

  Args:
    policy: a stateless TF policy with single-slot actions.

  Returns:
    The concrete function to export as a signature.

  Raises:
    ValueError: for a policy with state or with slate actions.
  """
  if tf.nest.flatten(policy.policy_state_spec):
    raise ValueError("select_track needs a stateless policy; this one has "
                     f"state {policy.policy_state_spec}")
  if policy.action_spec.shape.rank:
    raise ValueError(f"select_track returns one slot per row; the policy's "
                     f"actions have shape {policy.action_spec.shape}")
  obs_spec = policy.time_step_spec.observation
  specs = {key: tf.TensorSpec([None] + spec.shape.as_list(), spec.dtype,
                              name=key) for key, spec in obs_spec.items()}

  @tf.function(input_signature=[specs])
  def select_track(observation):
    b = tf.shape(observation["candidate_ids"])[0]
    # The greedy policies ignore rewards; FIRST marks a playlist's start.
    first = tf.equal(tf.cast(observation["position"], tf.int32), 0)
    step_type = tf.where(first, ts.StepType.FIRST, ts.StepType.MID)
    time_step = ts.TimeStep(step_type=step_type,
                            reward=tf.zeros([b], tf.float32),
                            discount=tf.ones([b], tf.float32),
                            observation=observation)
    action = policy.action(time_step, ()).action
    return {"slot": tf.cast(action, tf.int32)}
  return select_track.get_concrete_function()


class _SavedTFPolicy(tf_policy.TFPolicy):
  """A TFPolicy over a loaded SavedModel's `action` function."""

  def __init__(self, loaded, time_step_spec, action_spec, policy_state_spec,
               info_spec):
    self._loaded = loaded
    super().__init__(time_step_spec, action_spec,
                     policy_state_spec=policy_state_spec, info_spec=info_spec,
                     name="saved_policy")

  def _variables(self):
    return list(getattr(self._loaded, "model_variables", []))

  def _action(self, time_step, policy_state, seed=None):
    return self._loaded.action(time_step, policy_state)

  def _distribution(self, time_step, policy_state):
    raise NotImplementedError(
        "an exported policy saves actions only (no distribution)")


def load_policy(path: str) -> tf_policy.TFPolicy:
  """Loads a policy folder written by `agents.export_policy`.

  The result is a TF-Agents `TFPolicy` over the environment's observation
  (scores, if the policy uses them, are computed inside): use it with a
  `TFPyEnvironment`, or wrap it in `py_tf_eager_policy.PyTFEagerPolicy` for
  a PyEnvironment.

  Args:
    path: the policy folder (e.g. `runs/ahdqn/policy`).

  Returns:
    The policy (greedy, batched).

  Raises:
    PolicyLoadError: if the folder holds no exported policy.
  """
  specs_path = os.path.join(path, "policy_specs.pbtxt")
  if not os.path.isfile(os.path.join(path, "saved_model.pb")) or (
      not os.path.isfile(specs_path)):
    raise PolicyLoadError(
        f"{path!r} holds no exported policy (saved_model.pb and "
        "policy_specs.pbtxt, written by train_eval into root_dir/policy); "
        "pass a run's policy folder")
  specs = tensor_spec.from_pbtxt_file(specs_path)
  data_spec = specs["collect_data_spec"]
  time_step_spec = ts.time_step_spec(data_spec.observation,
                                     data_spec.reward)
  loaded = tf.saved_model.load(path)
  return _SavedTFPolicy(loaded, time_step_spec, data_spec.action,
                        specs["policy_state_spec"], data_spec.policy_info)
