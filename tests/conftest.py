"""Shared test fixtures: a small world and an environment factory."""

import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pytest  # noqa: E402

import simulator  # noqa: E402
import user_models  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_sigint() -> None:
  """`preexec_fn` for a subprocess a test interrupts with SIGINT.

  A test runner started in the background of a non-interactive shell
  (`(cmd &)`) inherits SIGINT ignored, and so would its children (Python
  keeps an ignored SIGINT); a command run from a terminal gets Ctrl-C.
  """
  signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture(scope="session")
def small_world():
  return user_models.SyntheticWorld(num_tracks=300, num_users=60, seed=1)


class ConstantUserModel(user_models.AbstractUserModel):
  """Returns the same P(skip) for every track (for exact-count tests)."""

  def __init__(self, p_skip: float):
    self.p_skip = p_skip

  def predict(self, context, track_ids):
    p = np.full(track_ids.shape, self.p_skip)
    return np.stack([p, 1.0 - p], axis=-1)


def make_env(world, user_model=None, sampler="discrete", slate_size=1,
             max_pool_size=20, min_pool_size=None, tracker=None, **env_kwargs):
  """A PlaylistEnvironment over `world` with the given parts."""
  track_sampler = (simulator.DiscreteTrackSampler(slate_size=slate_size)
                   if sampler == "discrete" else
                   simulator.ContinuousTrackSampler(slate_size=slate_size))
  builder = simulator.EnvironmentBuilder(
      user_model=user_model or user_models.LogisticUserModel(world),
      track_sampler=track_sampler,
      episode_sampler=simulator.RandomEpisodeSampler(
          world, max_pool_size=max_pool_size, min_pool_size=min_pool_size),
      episode_tracker=tracker)
  return builder.build(**env_kwargs)


def log_table(sessions) -> "pa.Table":
  """A minimal session log from [listen flags] per session.

  A skip row has skip_1..skip_3 set; a listen row has not_skipped set.
  """
  cols = {k: [] for k in ("session_id", "session_position", "skip_1",
                          "skip_2", "skip_3", "not_skipped")}
  for s, outcomes in enumerate(sessions):
    for p, listened in enumerate(outcomes):
      # Six digits: ids sort in session order for logs of up to 10**6.
      cols["session_id"].append(f"s{s:06d}")
      cols["session_position"].append(p + 1)
      for flag in ("skip_1", "skip_2", "skip_3"):
        cols[flag].append(not listened)
      cols["not_skipped"].append(bool(listened))
  return pa.table(cols)
