"""The environments of an agent run, built from the gin scopes `train`/`eval`.

The run loop every agent trains in (`agents.run_loop`) builds its
environments here: an `EnvironmentBuilder` inside each gin scope, so
one config trains in a learned simulator and evaluates in the listener world
(configs/ahdqn.gin), and a fresh evaluation environment for every evaluation
so that, with common random numbers, evaluation episode e is the same play
mode and outcome draws for every policy. `split_mismatch` tells when the
evaluation's held-out episodes are not held out from the learned simulator.
`RunEvaluation` is the evaluation side of a run: the periodic evaluations
(with their TensorBoard summaries) and the final comparison with baselines.
"""

from typing import Callable, Sequence

from absl import logging
import gin
import numpy as np
import tensorflow as tf
from tf_agents.policies import py_tf_eager_policy
from tf_agents.policies import tf_policy

from agents.lookahead_features import ModelLookaheadWrapper
from playlist_sim.evaluation.comparison import final_comparison
from playlist_sim.policies.score_features import UserModelScoreWrapper
from simulator.builder import EnvironmentBuilder, TFAgtPyEnvironment
# Registers LogEpisodeSampler with gin: the agent configs name it, and
# `simulator` no longer loads every module on import.
import simulator.log_episodes  # noqa: F401  pylint: disable=unused-import
from simulator.rollout import run_policy
from user_models.base import AbstractUserModel, UserModelLoadError

__all__ = ["PREREQUISITES", "RunEvaluation", "eval_env_factory", "make_env",
           "scored_env", "scoped_builder", "split_mismatch"]

#: How to make the files of the default learned simulator (configs/ahdqn.gin).
PREREQUISITES = (
    "python scripts/generate_logs.py --root_dir runs/logs && "
    "python scripts/train_user_model.py --gin_file "
    "configs/user_model_cwm_users.gin --logs_dir runs/logs --root_dir "
    "runs/cwm_users && python scripts/quantize_user_model.py --model "
    "runs/cwm_users/user_model.keras --logs_dir runs/logs --root_dir "
    "runs/quantized_users")


def scoped_builder(scope: str) -> EnvironmentBuilder:
  """The `EnvironmentBuilder` of a gin scope.

  Args:
    scope: gin scope, "train" or "eval".

  Returns:
    The builder, with its user model loaded.

  Raises:
    UserModelLoadError: if the scope's user model files are missing or bad;
      the message gives the commands that make the default ones.
  """
  with gin.config_scope(scope):
    try:
      return EnvironmentBuilder()
    except (UserModelLoadError, FileNotFoundError) as e:
      raise UserModelLoadError(
          f"the {scope!r} environment's user model could not be loaded ({e}). "
          f"The default learned simulator is made by: {PREREQUISITES} (or "
          "bind USER_MODEL_PATH, SESSIONS and TRACKS to your files)."
      ) from e


def make_env(scope: str, batch_size: int, seed: int) -> TFAgtPyEnvironment:
  """A natively batched environment of the scope's builder.

  Args:
    scope: gin scope, "train" or "eval".
    batch_size: listeners stepped together.
    seed: the environment's seed.

  Returns:
    The TF-Agents PyEnvironment.
  """
  return scoped_builder(scope).get_py_env(batch_size=batch_size, seed=seed)


# Gin-configurable so a config adds the lookahead feature to both worlds at
# once (configs/ahdqn.gin); the run loop calls it wherever it scores.
@gin.configurable(allowlist=["lookahead_shortlist"])
def scored_env(env: TFAgtPyEnvironment, scorer: AbstractUserModel,
               lookahead_shortlist: int | None = None):
  """`env` with the scorer's features added to its observations.

  Args:
    env: a batched playlist environment.
    scorer: the training user model (never the world's own).
    lookahead_shortlist: if set, the observations also carry the scorer's
      one-step lookahead of its this many best candidates
      (`agents.lookahead_features.ModelLookaheadWrapper`).

  Returns:
    The wrapped environment: `candidate_scores` (and `candidate_lookahead`).
  """
  env = UserModelScoreWrapper(env, scorer)
  if lookahead_shortlist is None:
    return env
  return ModelLookaheadWrapper(env, scorer, lookahead_shortlist)


def eval_env_factory(builder: EnvironmentBuilder, batch_size: int, seed: int,
                     common_random_numbers: bool = True,
                     scorer: AbstractUserModel | None = None
                     ) -> Callable[[], TFAgtPyEnvironment]:
  """A function giving a fresh evaluation environment at each call.

  Args:
    builder: the evaluation scope's builder.
    batch_size: listeners stepped together.
    seed: the environment's seed (the same at each call).
    common_random_numbers: the environment's common random numbers (needs an
      env_ctor that takes them, as `PlaylistEnvironment` does): episode e is
      the same at each call, episode ids restarting at 0.
    scorer: if given, the observations carry its P(listen) of every
      candidate (`playlist_sim.policies.score_features.UserModelScoreWrapper`)
      and whatever else `scored_env` adds.

  Returns:
    The factory.
  """
  crn = {"common_random_numbers": True} if common_random_numbers else {}

  def make() -> TFAgtPyEnvironment:
    env = builder.get_py_env(batch_size=batch_size, seed=seed, **crn)
    return env if scorer is None else scored_env(env, scorer)
  return make


def split_mismatch(train_user_model: AbstractUserModel,
                   eval_builder: EnvironmentBuilder) -> str | None:
  """Why the evaluation episodes may not be held out from the simulator.

  A learned user model records the split of the logs it trained on
  (`training_split`); the evaluation's held-out play modes come from the
  split of its `LogEpisodeSampler`. If the two differ (say, a model trained
  on a session split, evaluated on held-out users), some evaluation
  listeners or sessions were in the simulator's training data.

  Args:
    train_user_model: the training environment's user model.
    eval_builder: the evaluation scope's builder.

  Returns:
    A message naming both splits, or None if they agree or cannot be told.
  """
  trained = getattr(train_user_model, "training_split", None)
  sampler = eval_builder.episode_sampler
  ours = getattr(sampler, "split_settings", None)
  if not trained or not ours or getattr(sampler, "split", None) != "test":
    return None
  if all(trained.get(key) == value for key, value in ours.items()):
    return None
  return (f"the training user model was trained on the logs split {trained} "
          f"but the evaluation episodes are the held-out part of {ours}: "
          "some evaluation listeners or sessions may be in the simulator's "
          "training data (train the user model with the evaluation's split, "
          "e.g. configs/user_model_cwm_users.gin for "
          "LogEpisodeSampler.split_by = 'user')")


class RunEvaluation:
  """The evaluation side of an agent run (AH-DQN, DQN or PPO).

  Built from the `eval` gin scope with the run's seed + 1; every evaluation
  gets a fresh environment (`eval_env_factory`). A `split_mismatch` is
  logged as a warning and kept in `split_warning`.
  """

  def __init__(self, train_user_model: AbstractUserModel, batch_size: int,
               seed: int, common_random_numbers: bool = True,
               scorer: AbstractUserModel | None = None):
    """Builds the evaluation environment's builder.

    Args:
      train_user_model: the training environment's user model (for the
        `greedy_user_model` baseline and the split check).
      batch_size: listeners stepped together in an evaluation.
      seed: the run's seed (the evaluation uses seed + 1).
      common_random_numbers: see `eval_env_factory`; returns are then paired
        by episode.
      scorer: see `eval_env_factory`.

    Raises:
      UserModelLoadError: see `scoped_builder`.
    """
    self.builder, self.seed = scoped_builder("eval"), seed + 1
    self.paired = common_random_numbers
    self.make_env = eval_env_factory(self.builder, batch_size, self.seed,
                                     common_random_numbers, scorer)
    self._train_user_model = train_user_model
    self.split_warning = split_mismatch(train_user_model, self.builder)
    if self.split_warning:
      logging.warning("%s", self.split_warning)
    self.policy = None
    self._writer = self._step = None

  def attach(self, policy: tf_policy.TFPolicy, summary_dir: str,
             step: tf.Variable) -> py_tf_eager_policy.PyTFEagerPolicy:
    """Sets the policy evaluated, and where its returns are summarised.

    Args:
      policy: the agent's greedy policy.
      summary_dir: TensorBoard folder (root_dir/eval).
      step: the train step the summaries are written at.

    Returns:
      The policy as run in the evaluation environments.
    """
    self.policy = py_tf_eager_policy.PyTFEagerPolicy(
        policy, use_tf_function=True, batch_time_steps=False)
    self._writer = tf.summary.create_file_writer(summary_dir)
    self._step = step
    return self.policy

  def evaluate(self, num_episodes: int) -> np.ndarray:
    """Runs the attached policy and writes the mean return's summary.

    Args:
      num_episodes: episodes (the same ones at every call, with common
        random numbers).

    Returns:
      The episodes' returns.
    """
    env = self.make_env()
    returns = run_policy(env, self.policy, num_episodes,
                         progress=False).returns
    env.close()
    with self._writer.as_default():
      tf.summary.scalar("Metrics/AverageReturn", returns.mean(),
                        step=self._step)
    return returns

  def compare(self, agent_name: str, baselines: Sequence[str],
              num_episodes: int) -> dict:
    """The attached policy against the baselines (`final_comparison`).

    Args:
      agent_name: the agent's key in the comparison.
      baselines: baseline names (see `playlist_sim.evaluation.comparison`).
      num_episodes: episodes per policy.

    Returns:
      The comparison, for `playlist_sim.evaluation.comparison.run_metrics`.
    """
    return final_comparison(
        agent_name, self.policy, self.make_env, baselines,
        self._train_user_model, self.builder.user_model, num_episodes,
        self.seed, paired=self.paired)
