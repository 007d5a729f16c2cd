"""Where a learned user model errs along a policy's own trajectories.

A learned simulator overstates a policy's return when the model's
P(listen) is too high on the tracks that policy plays, in the states it
plays them in. `record_policy_states` runs a policy in the listener world
(the truth) on held-out logged sessions and records, at every track
placed, the world's P(listen), each learned model's P(listen), and the
world's own parts of the logit (affinity, fatigue, jump, patience), so
the gap can be cut by what drives it:

* by the model's score decile: a gap only in the top decile of the model's
  own ranking, which a second model trained with another seed does not
  share, is the optimizer's curse (the policy picks the model's errors);
* by position and fatigue: a gap that grows as a session wears on, shared
  by models of every training seed, is a bias of the model (a part of the
  world's response it cannot represent, or extrapolates wrongly).

`gap_table` summarises a record; `benchmarks/model_bias.py` runs both for a
set of policies (see docs/model_bias.md).
"""

import copy
import dataclasses

import numpy as np

from playlist_sim.data.sessions import LogSplit
from playlist_sim.policies import registry
from playlist_sim.evaluation.simulated import run_logged_episodes
from user_models.base import AbstractUserModel, SessionContext
from user_models.listener import ParametricListener

__all__ = ["StateRecord", "gap_table", "record_policy_states"]


@dataclasses.dataclass
class StateRecord:
  """Every track a policy placed in the world, with the models' views.

  Attributes:
    world: float64 [N] the world's P(listen).
    models: name -> float64 [N] each learned model's P(listen).
    position: int [N] tracks already played in the session.
    consecutive_skips: int [N] skips since the last listen.
    fatigue: float64 [N] the world's fatigue F (before its weight).
    jump: float64 [N] the world's transition term J (before its weight).
    affinity: float64 [N] the world's static logit (affinity, quality,
      bias), what the track is worth to a fresh listener.
  """
  world: np.ndarray
  models: dict
  position: np.ndarray
  consecutive_skips: np.ndarray
  fatigue: np.ndarray
  jump: np.ndarray
  affinity: np.ndarray


class _RecordingWorld(AbstractUserModel):
  """The world as the environment's user model, recording every query."""

  def __init__(self, world: ParametricListener, models: dict):
    self.response_levels = world.response_levels
    self._world = world
    self._models = models
    # The same listener without one term each: the term is the difference.
    self._no_fatigue = copy.copy(world)
    self._no_fatigue.fatigue_weight = 0.0
    self._no_jump = copy.copy(world)
    self._no_jump.jump_weight = 0.0
    self._bare = copy.copy(self._no_jump)
    self._bare.fatigue_weight = 0.0
    self.chunks = []

  def begin_sessions(self, rows, user_ids):
    self._world.begin_sessions(rows, user_ids)
    for model in self._models.values():
      model.begin_sessions(rows, user_ids)

  def observe(self, rows, track_ids, responses):
    self._world.observe(rows, track_ids, responses)
    for model in self._models.values():
      model.observe(rows, track_ids, responses)

  def leave_probability(self, context: SessionContext):
    return self._world.leave_probability(context)

  def predict(self, context: SessionContext, track_ids: np.ndarray):
    probs = self._world.predict(context, track_ids)
    logit = self._world.listen_logits(context, track_ids)
    fatigue = self._no_fatigue.listen_logits(context, track_ids) - logit
    jump = self._no_jump.listen_logits(context, track_ids) - logit
    bare = self._bare.listen_logits(context, track_ids)
    patience = (self._world.consecutive_skip_weight *
                np.asarray(context.consecutive_skips) +
                self._world.skip_weight * np.asarray(context.num_skips) +
                self._world.position_weight * np.asarray(context.position))
    k = track_ids.shape[1]
    self.chunks.append(dict(
        world=probs[..., -1].ravel().astype(np.float64),
        models={n: m.predict(context, track_ids)[..., -1].ravel().astype(
            np.float64) for n, m in self._models.items()},
        position=np.repeat(np.asarray(context.position), k),
        consecutive_skips=np.repeat(np.asarray(context.consecutive_skips), k),
        fatigue=(fatigue.ravel() / max(self._world.fatigue_weight, 1e-12)),
        jump=jump.ravel() / max(self._world.jump_weight, 1e-12),
        affinity=(bare + patience[:, None]).ravel().astype(np.float64)))
    return probs

  def _joined(self, key: str) -> np.ndarray:
    return np.concatenate([chunk[key] for chunk in self.chunks])

  def record(self) -> StateRecord:
    """Every query so far as one `StateRecord`."""
    models = {n: np.concatenate([c["models"][n] for c in self.chunks])
              for n in self._models}
    return StateRecord(
        world=self._joined("world"), models=models,
        position=self._joined("position"),
        consecutive_skips=self._joined("consecutive_skips"),
        fatigue=self._joined("fatigue"), jump=self._joined("jump"),
        affinity=self._joined("affinity"))


def record_policy_states(world: ParametricListener, models: dict,
                         logs_dir: str, policy_name: str, scorer,
                         num_episodes: int, seed: int = 0,
                         log_split: LogSplit | None = None,
                         consecutive_skip_limit: int | None = None,
                         split: str = "test") -> StateRecord:
  """Runs a policy in the world and records every track it places.

  Args:
    world: the listener world (the environment's dynamics).
    models: name -> learned `AbstractUserModel` to score the same states.
    logs_dir: the logs whose held-out sessions give the episodes.
    policy_name: a name `playlist_sim.policies.registry.make_policy` knows.
    scorer: the model greedy-by-model ranks with.
    num_episodes: episodes to run.
    seed: seed of the episodes and the policy.
    log_split: the split the models trained on (held-out users).
    consecutive_skip_limit: the environment's skip limit.
    split: "test" (the held-out listeners) or "train" (listeners the
      models trained on).

  Returns:
    The `StateRecord` of every placed track.

  Raises:
    ValueError: if `models` is empty.
  """
  if not models:
    raise ValueError("record_policy_states: pass at least one learned model "
                     "in `models` to compare with the world")
  recorder = _RecordingWorld(world, models)
  run_logged_episodes(
      recorder, logs_dir,
      lambda env: registry.make_policy(policy_name, env, scorer=scorer,
                                       seed=seed),
      num_episodes, seed, log_split=log_split,
      consecutive_skip_limit=consecutive_skip_limit, split=split)
  return recorder.record()


def _row(world: np.ndarray, models: dict, mask: np.ndarray) -> dict:
  n = int(mask.sum())
  row = {"rows": n, "world": float(world[mask].mean()) if n else None}
  for name, p in models.items():
    row[name] = float(p[mask].mean()) if n else None
  return row


def gap_table(record: StateRecord, model: str) -> dict:
  """Mean P(listen) of the world and every model, cut several ways.

  Args:
    record: a `StateRecord`.
    model: the model whose deciles and gaps the cuts use.

  Returns:
    {"all": row, "by_decile": [10 rows by `model`'s score decile],
    "by_position": {label: row}, "by_fatigue": {label: row}}; a row holds
    the row count and the mean P(listen) of the world and each model.

  Raises:
    KeyError: if `model` is not in the record.
  """
  if model not in record.models:
    raise KeyError(f"gap_table: no model {model!r} in the record; it has "
                   f"{sorted(record.models)}")
  score = record.models[model]
  edges = np.quantile(score, np.linspace(0, 1, 11))
  decile = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, 9)
  position_bins = {"0": record.position == 0,
                   "1-4": (record.position >= 1) & (record.position <= 4),
                   "5-9": (record.position >= 5) & (record.position <= 9),
                   "10+": record.position >= 10}
  f = record.fatigue
  edges = (1e-6, 0.25, 0.5, 1.0, 1.5)
  labels = ("(0,0.25]", "(0.25,0.5]", "(0.5,1]", "(1,1.5]")
  fatigue_bins = {"0": f <= edges[0]}
  for label, lo, hi in zip(labels, edges[:-1], edges[1:]):
    fatigue_bins[label] = (f > lo) & (f <= hi)
  fatigue_bins[">1.5"] = f > edges[-1]
  return {
      "all": _row(record.world, record.models,
                  np.ones(len(score), bool)),
      "by_decile": [_row(record.world, record.models, decile == d)
                    for d in range(10)],
      "by_position": {k: _row(record.world, record.models, m)
                      for k, m in position_bins.items()},
      "by_fatigue": {k: _row(record.world, record.models, m)
                     for k, m in fatigue_bins.items()},
  }
