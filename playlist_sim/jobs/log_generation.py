"""Historical session logs from a stochastic logging policy in a world.

`generate_logs` runs a softmax logging policy (over a popularity + taste
score, with a temperature, so every available candidate has a known non-zero
probability) in a gin-configured environment, typically the listener world
(`configs/world.gin`), and writes what a real team would have:

* `sessions.parquet` (or `.csv`): the public session-log columns, plus our
  optional `user_id`, `play_mode_id` (the candidate pool) and `propensity`
  (the logging policy's probability of each logged track);
* `tracks.parquet` (or `.csv`): the public track-feature columns.

Columns the simulation does not model (pauses, seeks, shuffle, premium,
hour, date, context, context switches, the reasons a track started and ended)
are drawn from seeded distributions whose shares are the public dataset's
(`mssd_reference.json`, log_mini); the response columns come from the world,
and a session's last row carries a leaving reason (endplay, logout, remote)
when the listener left there.

Selection. The public dataset keeps sessions of at least 10 tracks and cuts
longer ones at 20. `generate_logs(min_session_length=10,
max_session_length=20)` does the same (the calibrated world, `configs/
world.gin`, turns it on): `num_sessions` then counts the sessions *kept*,
the first to start among those long enough, and a kept session longer than
the cut is truncated (its `session_length` is the cut, and its last row is
not a leaving row: the listener went on).
"""

import datetime
import glob
import os

import gin
import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from playlist_sim.common.io_utils import ensure_writable_dir
from playlist_sim.data import logs
from playlist_sim.data.checks import check_count, check_seed
from playlist_sim.data.log_stats import ENDED_OTHERWISE
from playlist_sim.data.log_stats import LISTEN_LEVEL
from playlist_sim.data.log_stats import SKIP_2
from playlist_sim.data.log_stats import flags_from_levels
from playlist_sim.data.log_stats import summarize_logs
from playlist_sim.data.responses import PUBLIC_RESPONSE_LEVELS
from playlist_sim.policies.softmax import SoftmaxScorePolicy
from playlist_sim.policies.softmax import SoftmaxSpec
from playlist_sim.policies.softmax import softmax_policy
from simulator.builder import EnvironmentBuilder
from simulator.tracker import EpisodeTracker

__all__ = ["LogsExistError", "generate_logs", "logging_policy",
           "prepare_log_dir"]

# Session metadata shares: the public log_mini sample's (mssd_reference.json).
_CONTEXT_TYPES = np.array(["user_collection", "catalog", "editorial_playlist",
                           "radio", "personalized_playlist", "charts"])
_CONTEXT_P = np.array([0.4017, 0.2279, 0.2124, 0.1257, 0.0177, 0.0145])
_PREMIUM_SHARE = 0.8104
_SHUFFLE_SHARE = 0.3087
_CONTEXT_SWITCH_SHARE = 0.0409
_SEEKFWD_MEAN, _SEEKBACK_MEAN = 0.0389, 0.0463
# reason_end given the row's outcome. The shares are chosen so that, with
# the public level shares (a third listened, about 4.5% ended otherwise),
# the marginal shares are the public ones (fwdbtn .485, trackdone .344,
# endplay .088, backbtn .078): skips end by the forward button, sometimes by
# going back or stopping; a track that ended otherwise was mostly stopped.
_REASONS = np.array(["fwdbtn", "trackdone", "endplay", "backbtn", "logout",
                     "remote"])
_REASON_P_SKIP = np.array([0.82, 0.0, 0.065, 0.115, 0.0, 0.0])
_REASON_P_LISTEN = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
_REASON_P_OTHER = np.array([0.0, 0.25, 0.5, 0.25, 0.0, 0.0])
# The last row of a session the listener left.
_REASON_P_LEAVE = np.array([0.0, 0.0, 0.85, 0.0, 0.1, 0.05])
_FIRST_DATE = datetime.date(2018, 7, 1)


class LogsExistError(ValueError):
  """root_dir already holds the logs of a finished run."""


def prepare_log_dir(root_dir: str, file_format: str = "parquet",
                    overwrite: bool = False,
                    marker: str = "metrics.json") -> bool:
  """Checks root_dir before generating logs into it; cleans a killed run.

  A finished run has written its sessions and tracks files and then
  `marker` (the scripts' metrics.json, written last). Files are written
  whole (temp file and rename), so a killed run leaves at most a subset of
  complete files and some temporary files; it is restarted from scratch,
  which gives the same bytes since generation is deterministic in the seed.
  Nothing is ever appended.

  Args:
    root_dir: the logs folder.
    file_format: "parquet" or "csv".
    overwrite: regenerate the logs of a finished run.
    marker: the file a finished run writes last.

  Returns:
    True if an unfinished run's files were found (and will be replaced).

  Raises:
    LogsExistError: if root_dir holds a finished run and overwrite is False.
  """
  root_dir = ensure_writable_dir(root_dir)
  names = [f"sessions.{file_format}", f"tracks.{file_format}"]
  for name in names + [marker]:  # Temp files of atomic writes cut short.
    for leftover in glob.glob(os.path.join(root_dir, f".{name}.*.tmp")):
      os.remove(leftover)
  present = [n for n in names + [marker]
             if os.path.exists(os.path.join(root_dir, n))]
  finished = len(present) == len(names) + 1
  if finished and overwrite:  # Unfinished until the new run's marker.
    os.remove(os.path.join(root_dir, marker))
    return False
  if finished:
    raise LogsExistError(
        f"root_dir {root_dir!r} already holds finished logs ({', '.join(names)}"
        f" and {marker}); pass --overwrite to generate them again, or choose "
        "another --root_dir")
  return bool(present) and len(present) < len(names) + 1


@gin.configurable
def logging_policy(time_step_spec, action_spec, catalog,
                   temperature: float = 0.25,
                   popularity_weight: float = 0.5,
                   taste_weight: float = 1.0,
                   seed: int = 0) -> SoftmaxScorePolicy:
  """The stochastic logging policy: softmax over a popularity/taste score.

  score = popularity_weight * popularity rank + taste_weight * cosine(user
  features, acoustic vector); P(slot) = softmax(score / temperature) over the
  available candidates.

  Args:
    time_step_spec: the environment's time step spec.
    action_spec: a single-slot discrete action spec.
    catalog: the track catalog.
    temperature: softmax temperature; higher is closer to uniform.
    popularity_weight: weight of the popularity rank.
    taste_weight: weight of the cosine taste score.
    seed: seed of the sampling.

  Returns:
    A `SoftmaxScorePolicy` reporting `info["propensity"]`: the same policy
    class, score and sampling that off-policy evaluation's targets use.
  """
  spec = SoftmaxSpec(temperature=temperature,
                     popularity_weight=popularity_weight,
                     taste_weight=taste_weight)
  return softmax_policy(time_step_spec, action_spec, catalog, spec, seed=seed,
                        name="logging")


@gin.configurable(denylist=["root_dir", "seed", "file_format"])
def generate_logs(root_dir: str, num_sessions: int = 20000,
                  batch_size: int = 1024, seed: int = 0,
                  file_format: str = "parquet", progress: bool = True,
                  min_session_length: int = 1,
                  max_session_length: int | None = None) -> dict:
  """Writes root_dir/sessions.<fmt> and root_dir/tracks.<fmt>.

  Args:
    root_dir: output folder.
    num_sessions: sessions to log (the first to start among those kept by
      the selection, so that long and short sessions are kept alike).
    batch_size: listeners simulated at once.
    seed: seed of the environment, the policy and the unmodelled columns.
    file_format: "parquet" or "csv".
    progress: show a progress bar.
    min_session_length: sessions with fewer tracks are dropped (the public
      dataset: 10).
    max_session_length: kept sessions are cut after this many tracks (the
      public dataset: 20); None keeps them whole.

  Returns:
    A summary (paths, the selection and
    `playlist_sim.data.log_stats.summarize_logs` figures).

  Raises:
    ValueError: on a bad format, size or selection, or a user model whose
      levels are neither the five public ones nor skip/not_skipped.
  """
  if file_format not in ("parquet", "csv"):
    raise ValueError(f"file_format must be 'parquet' or 'csv', got "
                     f"{file_format!r}")
  check_count("num_sessions", num_sessions, maximum=10**10,
              owner="generate_logs")
  check_count("batch_size", batch_size, maximum=10**6, owner="generate_logs")
  check_seed("seed", seed, owner="generate_logs")
  check_count("min_session_length", min_session_length, maximum=10**6,
              owner="generate_logs")
  if (max_session_length is not None and
      check_count("max_session_length", max_session_length, maximum=10**6,
                  owner="generate_logs") < min_session_length):
    raise ValueError(
        f"generate_logs: need min_session_length <= max_session_length,"
        f" got {min_session_length} and {max_session_length}")
  root_dir = ensure_writable_dir(root_dir)
  tracker = EpisodeTracker(max_rows_in_memory=10**9)
  py_env = EnvironmentBuilder(episode_tracker=tracker).get_py_env(
      batch_size=batch_size, seed=seed)
  env = py_env.environment
  levels = tuple(env.response_levels)
  if levels not in (PUBLIC_RESPONSE_LEVELS, ("skip", "not_skipped")):
    raise ValueError(f"logs need the public response levels, got {levels}")
  if env.track_sampler.slate_size != 1:
    raise ValueError("logs are generated one track per step (slate_size 1)")
  if min_session_length > env.max_playlist_length:
    raise ValueError(
        f"generate_logs: min_session_length {min_session_length} exceeds the "
        f"environment's max_playlist_length {env.max_playlist_length}; no "
        "session could be kept")
  policy = logging_policy(py_env.time_step_spec(), py_env.action_spec(),
                          env.catalog, seed=seed)
  keys, values, kept = _run_logging(py_env, policy, num_sessions,
                                    min_session_length, progress)
  rows = tracker.to_table()
  table = _session_table(rows, keys, values, levels, kept,
                         max_session_length, seed)
  ext = "parquet" if file_format == "parquet" else "csv"
  sessions_path = os.path.join(root_dir, f"sessions.{ext}")
  tracks_path = os.path.join(root_dir, f"tracks.{ext}")
  logs.write_tracks(env.catalog, tracks_path)
  logs.write_sessions(table, sessions_path)
  summary = summarize_logs(table)
  summary.update(sessions_path=sessions_path, tracks_path=tracks_path,
                 user_model=type(env.user_model).__name__,
                 min_session_length=int(min_session_length),
                 max_session_length=max_session_length,
                 sessions_simulated=int(kept.max()) + 1)
  return summary


def _run_logging(py_env, policy, num_sessions: int, min_length: int,
                 progress: bool):
  """Steps the environment until the first `num_sessions` sessions of at
  least `min_length` tracks (in start order) have ended.

  Returns:
    (propensity keys episode_id * 10**6 + step, propensities, the kept
    episode ids in start order).

  Raises:
    ValueError: if sessions that long are too rare to ever collect enough.
  """
  env = py_env.environment
  keys, values = [], []
  lengths = np.full(1024, -1, np.int64)  # Final length by episode id.
  bar = tqdm(total=num_sessions, unit="session", disable=not progress,
             desc="logging")
  time_step = py_env.reset()
  steps = np.zeros(env.batch_size, np.int64)
  while True:
    decision = policy.action(time_step)
    episode_ids = env.episode_ids
    running = time_step.step_type != 2  # LAST rows are reset, not stepped.
    keys.append(episode_ids[running] * 10**6 + steps[running])
    values.append(decision.info["propensity"][running])
    time_step = py_env.step(decision.action)
    steps = np.where(time_step.step_type == 0, 0, steps + 1)
    last = np.flatnonzero(time_step.step_type == 2)
    if last.size:
      ended = env.episode_ids[last]
      if ended.max() >= lengths.size:
        lengths = np.concatenate(
            [lengths, np.full(max(lengths.size, ended.max() + 1), -1)])
      lengths[ended] = env.session_context(last).position
    # Every episode before the oldest one still running has ended.
    ongoing = env.episode_ids[time_step.step_type != 2]
    settled = int(ongoing.min()) if ongoing.size else int(
        env.episode_ids.max()) + 1
    kept = np.flatnonzero(lengths[:settled] >= min_length)
    if kept.size - bar.n > 0:
      bar.update(min(kept.size, num_sessions) - bar.n)
    if kept.size < num_sessions and settled > 50 * num_sessions + 10000:
      bar.close()
      raise ValueError(
          f"generate_logs: only {kept.size} of {settled} simulated sessions "
          f"reached min_session_length {min_length}; lower it (or check the "
          "world's leaving behaviour)")
    if kept.size >= num_sessions:
      bar.close()
      return (np.concatenate(keys), np.concatenate(values),
              kept[:num_sessions])


def _session_table(rows: pa.Table, prop_keys: np.ndarray,
                   prop_values: np.ndarray, levels: tuple,
                   kept_episodes: np.ndarray, max_length: int | None,
                   seed: int) -> pa.Table:
  """Turns tracker rows of the kept sessions into the public log table."""
  col = _kept_rows(rows, kept_episodes, max_length)
  episode = col["episode_id"]
  key = episode * 10**6 + col["step"]
  sorter = np.argsort(prop_keys, kind="stable")
  found = sorter[np.searchsorted(prop_keys, key, sorter=sorter)]
  level = _level_index(col["response"], levels)
  starts = np.r_[True, episode[1:] != episode[:-1]]
  session_index = np.cumsum(starts) - 1
  lengths = np.bincount(session_index)
  # A session's last kept row is where its listener left unless the session
  # was cut there or ran into the environment's length cap.
  left = np.r_[starts[1:], True] & np.isin(
      col["termination_reason"], ["consecutive_skips", "listener_left"])
  context = _listening_context(np.random.default_rng(seed + 1), starts,
                               session_index, level, left)
  users = col["user_id"]
  # Premium is a listener's, and an exact quota of listeners has it, so the
  # row share does not wander with which listeners' sessions were kept.
  num_users = users.max() + 1
  context["premium"] = (np.random.default_rng([seed, 7]).permutation(
      num_users) < round(_PREMIUM_SHARE * num_users))[users]
  data = {
      "session_id": np.char.add("s_", np.char.zfill(
          episode.astype(str), 8)),
      "session_position": (np.arange(len(episode)) -
                           np.flatnonzero(starts)[session_index] + 1),
      "session_length": lengths[session_index],
      "track_id_clean": col["track_id"].astype(str),
      **flags_from_levels(level),
      **{name: context[name] for name in _CONTEXT_COLUMNS},
      "user_id": users.astype(np.int64),
      "play_mode_id": col["play_mode_id"].astype(np.int64),
      "propensity": prop_values[found].astype(np.float64),
  }
  schema = {**logs.SESSION_DTYPES, **logs.EXTRA_SESSION_DTYPES}
  return pa.table({k: pa.array(v, schema[k] if k != "date" else pa.date32())
                   for k, v in data.items()})


def _kept_rows(rows: pa.Table, kept_episodes: np.ndarray,
               max_length: int | None) -> dict[str, np.ndarray]:
  """The tracker columns of the kept sessions' rows, in session order."""
  col = {k: rows.column(k).to_numpy(zero_copy_only=False)
         for k in ("episode_id", "play_mode_id", "user_id", "step",
                   "track_id", "response", "termination_reason")}
  keep = np.isin(col["episode_id"], kept_episodes)
  if max_length is not None:
    keep &= col["step"] < max_length
  col = {k: v[keep] for k, v in col.items()}
  order = np.lexsort((col["step"], col["episode_id"]))
  return {k: v[order] for k, v in col.items()}


#: The session-metadata columns, in the public layout's order.
_CONTEXT_COLUMNS = (
    "context_switch", "no_pause_before_play", "short_pause_before_play",
    "long_pause_before_play", "hist_user_behavior_n_seekfwd",
    "hist_user_behavior_n_seekback", "hist_user_behavior_is_shuffle",
    "hour_of_day", "date", "premium", "context_type",
    "hist_user_behavior_reason_start", "hist_user_behavior_reason_end")


def _listening_context(rng: np.random.Generator, starts: np.ndarray,
                       session_index: np.ndarray, level: np.ndarray,
                       left: np.ndarray) -> dict[str, np.ndarray]:
  """The metadata columns a session log carries beside the outcomes.

  The draws keep one order (the logs of a seed stay byte-identical).
  """
  n, num_sess = len(starts), int(session_index[-1]) + 1
  hour = rng.integers(0, 24, num_sess)
  day = rng.integers(0, 80, num_sess)
  shuffle = rng.random(num_sess) < _SHUFFLE_SHARE
  pause = rng.random(n)
  switch = (rng.random(n) < _CONTEXT_SWITCH_SHARE * n / max(n - num_sess, 1)
            ) & ~starts
  # A context switch starts a new stretch with its own context type.
  stretch = np.cumsum(switch | starts) - 1
  context = rng.choice(_CONTEXT_TYPES, size=stretch[-1] + 1,
                       p=_CONTEXT_P / _CONTEXT_P.sum())[stretch]
  reason_end = _reason_end(rng, level, left)
  reason_start = np.empty(n, dtype=object)
  reason_start[1:] = reason_end[:-1]
  reason_start[starts] = rng.choice(np.array(["clickrow", "playbtn",
                                              "trackdone"]),
                                    size=num_sess)[session_index[starts]]
  dates = np.array([_FIRST_DATE + datetime.timedelta(days=int(d))
                    for d in day])
  return {
      "context_switch": switch.astype(np.int64),
      "no_pause_before_play": (pause < 0.85).astype(np.int64),
      "short_pause_before_play": ((pause >= 0.85) & (pause < 0.95)
                                  ).astype(np.int64),
      "long_pause_before_play": (pause >= 0.95).astype(np.int64),
      "hist_user_behavior_n_seekfwd": (rng.random(n) < _SEEKFWD_MEAN
                                       ).astype(np.int64),
      "hist_user_behavior_n_seekback": (rng.random(n) < _SEEKBACK_MEAN
                                        ).astype(np.int64),
      "hist_user_behavior_is_shuffle": shuffle[session_index],
      "hour_of_day": hour[session_index],
      "date": dates[session_index],
      "context_type": context,
      "hist_user_behavior_reason_start": reason_start.astype(str),
      "hist_user_behavior_reason_end": reason_end,
  }


def _reason_end(rng: np.random.Generator, level: np.ndarray,
                left: np.ndarray) -> np.ndarray:
  """reason_end of each row from its outcome, and leaving rows."""
  u = rng.random(len(level))
  out = np.empty(len(level), dtype=_REASONS.dtype)
  groups = ((level == LISTEN_LEVEL, _REASON_P_LISTEN),
            (level == ENDED_OTHERWISE, _REASON_P_OTHER),
            (level < ENDED_OTHERWISE, _REASON_P_SKIP))
  for mask, p in groups + ((left, _REASON_P_LEAVE),):
    cdf = np.cumsum(p) / p.sum()
    cdf[-1] = 1.0  # u < 1, so every row gets a reason of non-zero share.
    out[mask] = _REASONS[np.searchsorted(cdf, u[mask], "right")]
  return out


def _level_index(responses: np.ndarray, levels: tuple) -> np.ndarray:
  """Public level index (`PUBLIC_RESPONSE_LEVELS`) of each response name."""
  if levels == PUBLIC_RESPONSE_LEVELS:
    lookup = {name: i for i, name in enumerate(levels)}
  else:  # A binary model's skip is logged as a skip_2 (the challenge label).
    lookup = {"skip": SKIP_2, "not_skipped": LISTEN_LEVEL}
  return np.vectorize(lookup.__getitem__, otypes=[np.int64])(responses)
