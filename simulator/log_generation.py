"""Historical session logs from a stochastic logging policy in a world.

`generate_logs` runs a softmax logging policy (over a popularity + taste
score, with a temperature, so every available candidate has a known non-zero
probability) in a gin-configured environment, typically the listener world
(`configs/world.gin`), and writes what a real team would have:

* `sessions.parquet` (or `.csv`): the public session-log columns, plus our
  optional `user_id`, `play_mode_id` (the candidate pool) and `propensity`
  (the logging policy's probability of each logged track);
* `tracks.parquet` (or `.csv`): the public track-feature columns.

Columns the simulation does not model (pauses, seeks, shuffle, hour, date,
context) are drawn from simple, seeded distributions so the files look like
the public ones; the response columns come from the world.
"""

import datetime
import glob
import os

import gin
import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from agents.baselines import ScoringPyPolicy, cosine_scores
from simulator import logs
from simulator.builder import EnvironmentBuilder
from simulator.io_utils import ensure_writable_dir
from simulator.log_stats import ENDED_OTHERWISE
from simulator.log_stats import LISTEN_LEVEL
from simulator.log_stats import SKIP_2
from simulator.log_stats import flags_from_levels
from simulator.log_stats import summarize_logs
from simulator.tracker import EpisodeTracker
from user_models.base import PUBLIC_RESPONSE_LEVELS
from user_models.checks import check_count, check_seed

__all__ = ["LogsExistError", "generate_logs", "logging_policy",
           "prepare_log_dir"]

_CONTEXT_TYPES = np.array(["editorial_playlist", "user_collection", "catalog",
                           "radio", "charts", "personalized_playlist"])
_CONTEXT_P = np.array([0.35, 0.3, 0.1, 0.1, 0.05, 0.1])
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
                   taste_weight: float = 1.0, seed: int = 0) -> ScoringPyPolicy:
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
    A `ScoringPyPolicy` reporting `info["propensity"]`.
  """
  cosine = cosine_scores(catalog)

  def score(obs):
    return (popularity_weight * catalog.popularity[obs["candidate_ids"]] +
            taste_weight * cosine(obs))
  return ScoringPyPolicy(time_step_spec, action_spec, score, name="logging",
                         temperature=temperature, seed=seed)


@gin.configurable(denylist=["root_dir", "seed", "file_format"])
def generate_logs(root_dir: str, num_sessions: int = 20000,
                  batch_size: int = 1024, seed: int = 0,
                  file_format: str = "parquet", progress: bool = True) -> dict:
  """Writes root_dir/sessions.<fmt> and root_dir/tracks.<fmt>.

  Args:
    root_dir: output folder.
    num_sessions: sessions to log (the first to start, so that long and short
      sessions are kept alike).
    batch_size: listeners simulated at once.
    seed: seed of the environment, the policy and the unmodelled columns.
    file_format: "parquet" or "csv".
    progress: show a progress bar.

  Returns:
    A summary (paths and `simulator.log_stats.summarize_logs` figures).

  Raises:
    ValueError: on a bad format or size, or a user model whose levels are
      neither the five public ones nor skip/not_skipped.
  """
  if file_format not in ("parquet", "csv"):
    raise ValueError(f"file_format must be 'parquet' or 'csv', got "
                     f"{file_format!r}")
  check_count("num_sessions", num_sessions, maximum=10**10,
              owner="generate_logs")
  check_count("batch_size", batch_size, maximum=10**6, owner="generate_logs")
  check_seed("seed", seed, owner="generate_logs")
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
  policy = logging_policy(py_env.time_step_spec(), py_env.action_spec(),
                          env.catalog, seed=seed)
  # Propensity of each decision, keyed by episode_id * 10**6 + step.
  keys, values = [], []
  bar = tqdm(total=num_sessions, unit="session", disable=not progress,
             desc="logging")
  time_step = py_env.reset()
  steps = np.zeros(batch_size, np.int64)
  while True:
    episode_ids = env.episode_ids
    if episode_ids.min() >= num_sessions:
      break
    decision = policy.action(time_step)
    running = time_step.step_type != 2  # LAST rows are reset, not stepped.
    keys.append(episode_ids[running] * 10**6 + steps[running])
    values.append(decision.info["propensity"][running])
    time_step = py_env.step(decision.action)
    steps = np.where(time_step.step_type == 0, 0, steps + 1)
    started_and_done = int(min(env.episode_ids.min(), num_sessions))
    if started_and_done > bar.n:
      bar.update(started_and_done - bar.n)
  bar.close()
  rows = tracker.to_table()
  table = _session_table(rows, np.concatenate(keys), np.concatenate(values),
                         levels, num_sessions, seed)
  ext = "parquet" if file_format == "parquet" else "csv"
  sessions_path = os.path.join(root_dir, f"sessions.{ext}")
  tracks_path = os.path.join(root_dir, f"tracks.{ext}")
  logs.write_tracks(env.catalog, tracks_path)
  logs.write_sessions(table, sessions_path)
  summary = summarize_logs(table)
  summary.update(sessions_path=sessions_path, tracks_path=tracks_path,
                 user_model=type(env.user_model).__name__)
  return summary


def _session_table(rows: pa.Table, prop_keys: np.ndarray,
                   prop_values: np.ndarray, levels: tuple, num_sessions: int,
                   seed: int) -> pa.Table:
  """Turns tracker rows of the kept sessions into the public log table."""
  col = {k: rows.column(k).to_numpy(zero_copy_only=False)
         for k in ("episode_id", "play_mode_id", "user_id", "step",
                   "track_id", "response")}
  keep = col["episode_id"] < num_sessions
  col = {k: v[keep] for k, v in col.items()}
  order = np.lexsort((col["step"], col["episode_id"]))
  col = {k: v[order] for k, v in col.items()}
  episode = col["episode_id"]
  n = len(episode)
  key = episode * 10**6 + col["step"]
  sorter = np.argsort(prop_keys, kind="stable")
  found = sorter[np.searchsorted(prop_keys, key, sorter=sorter)]
  propensity = prop_values[found].astype(np.float64)

  level = _level_index(col["response"], levels)
  starts = np.r_[True, episode[1:] != episode[:-1]]
  session_index = np.cumsum(starts) - 1
  lengths = np.bincount(session_index)
  position = np.arange(n) - np.flatnonzero(starts)[session_index] + 1

  rng = np.random.default_rng(seed + 1)
  num_sess = len(lengths)
  hour = rng.integers(0, 24, num_sess)
  day = rng.integers(0, 80, num_sess)
  shuffle = rng.random(num_sess) < 0.3
  context = rng.choice(_CONTEXT_TYPES, size=num_sess, p=_CONTEXT_P)
  users = col["user_id"]
  premium = (np.random.default_rng([seed, 7]).random(users.max() + 1) <
             0.7)[users]
  skipped = level != LISTEN_LEVEL
  pause = rng.random(n)
  # A track that ended otherwise (neither skipped early nor played out) ends
  # by the back button, as most such rows of the public data that do not
  # close the session.
  reason_end = np.select([level == ENDED_OTHERWISE, skipped],
                         ["backbtn", "fwdbtn"], "trackdone")
  reason_start = np.empty(n, dtype=object)
  reason_start[1:] = reason_end[:-1]
  reason_start[starts] = rng.choice(np.array(["clickrow", "playbtn",
                                              "trackdone"]),
                                    size=num_sess)[session_index[starts]]
  dates = np.array([_FIRST_DATE + datetime.timedelta(days=int(d))
                    for d in day])
  data = {
      "session_id": np.char.add("s_", np.char.zfill(
          episode.astype(str), 8)),
      "session_position": position,
      "session_length": lengths[session_index],
      "track_id_clean": col["track_id"].astype(str),
      **flags_from_levels(level),
      "context_switch": np.zeros(n, np.int64),
      "no_pause_before_play": (pause < 0.85).astype(np.int64),
      "short_pause_before_play": ((pause >= 0.85) & (pause < 0.95)
                                  ).astype(np.int64),
      "long_pause_before_play": (pause >= 0.95).astype(np.int64),
      "hist_user_behavior_n_seekfwd": (rng.random(n) < 0.05 * skipped
                                       ).astype(np.int64),
      "hist_user_behavior_n_seekback": (rng.random(n) < 0.03
                                        ).astype(np.int64),
      "hist_user_behavior_is_shuffle": shuffle[session_index],
      "hour_of_day": hour[session_index],
      "date": dates[session_index],
      "premium": premium,
      "context_type": context[session_index],
      "hist_user_behavior_reason_start": reason_start.astype(str),
      "hist_user_behavior_reason_end": reason_end,
      "user_id": users.astype(np.int64),
      "play_mode_id": col["play_mode_id"].astype(np.int64),
      "propensity": propensity,
  }
  schema = {**logs.SESSION_DTYPES, **logs.EXTRA_SESSION_DTYPES}
  return pa.table({k: pa.array(v, schema[k] if k != "date" else pa.date32())
                   for k, v in data.items()})


def _level_index(responses: np.ndarray, levels: tuple) -> np.ndarray:
  """Public level index (`PUBLIC_RESPONSE_LEVELS`) of each response name."""
  if levels == PUBLIC_RESPONSE_LEVELS:
    lookup = {name: i for i, name in enumerate(levels)}
  else:  # A binary model's skip is logged as a skip_2 (the challenge label).
    lookup = {"skip": SKIP_2, "not_skipped": LISTEN_LEVEL}
  return np.vectorize(lookup.__getitem__, otypes=[np.int64])(responses)
