"""The environments of an agent run, built from the gin scopes `train`/`eval`.

`train_eval` (AH-DQN, DQN) and `agents.ppo.train_ppo` build their
environments the same way: an `EnvironmentBuilder` inside each gin scope, so
one config trains in a learned simulator and evaluates in the listener world
(configs/ahdqn.gin), and a fresh evaluation environment for every evaluation
so that, with common random numbers, evaluation episode e is the same play
mode and outcome draws for every policy. `split_mismatch` tells when the
evaluation's held-out episodes are not held out from the learned simulator.
"""

from typing import Callable

import gin

from agents.score_features import UserModelScoreWrapper
from simulator.builder import EnvironmentBuilder, TFAgtPyEnvironment
from user_models.base import AbstractUserModel, UserModelLoadError

__all__ = ["PREREQUISITES", "eval_env_factory", "make_env", "scoped_builder",
           "split_mismatch"]

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
      candidate (`agents.score_features.UserModelScoreWrapper`).

  Returns:
    The factory.
  """
  crn = {"common_random_numbers": True} if common_random_numbers else {}

  def make() -> TFAgtPyEnvironment:
    env = builder.get_py_env(batch_size=batch_size, seed=seed, **crn)
    return env if scorer is None else UserModelScoreWrapper(env, scorer)
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
