"""Oracle policies that know the listener world's true probabilities.

They read the session state straight from the environment
(`PlaylistEnvironment.session_context`) and score candidates with the
world's `ParametricListener`, so they are yardsticks, not deployable
policies:

* greedy (`lookahead=False`): the candidate with the highest listen
  probability now, the strong myopic baseline;
* one-step lookahead: among the `shortlist` best candidates now, the track t
  maximising P(listen t) + discount * max_t' P(listen t' | t just played),
  which accounts for the fatigue and transition t causes for the next track.

Comparing the two measures how much order matters in the world
(`scripts/order_matters.py`).
"""

import dataclasses

import numpy as np
from tf_agents.policies import py_policy
from tf_agents.trajectories import policy_step

from simulator.builder import TFAgtPyEnvironment
from simulator.environment import PlaylistEnvironment
from user_models.base import SessionContext
from user_models.listener import ParametricListener

__all__ = ["OraclePolicy"]


def _take(context: SessionContext, index: np.ndarray) -> SessionContext:
  return SessionContext(**{f.name: getattr(context, f.name)[index]
                           for f in dataclasses.fields(context)})


class OraclePolicy(py_policy.PyPolicy):
  """Greedy or one-step-lookahead policy on the true listen probabilities."""

  def __init__(self, env: PlaylistEnvironment, listener: ParametricListener,
               lookahead: bool = False, shortlist: int = 8,
               discount: float = 1.0):
    """Builds the policy.

    Args:
      env: the environment whose sessions are read (batched, slate size 1).
      listener: the world's listener.
      lookahead: False for greedy, True for one-step lookahead.
      shortlist: candidates considered by the lookahead.
      discount: weight of the next track's probability.

    Raises:
      ValueError: for a slate environment.
    """
    if env.track_sampler.slate_size != 1:
      raise ValueError("OraclePolicy places one track per step")
    specs = TFAgtPyEnvironment(env)
    super().__init__(specs.time_step_spec(), specs.action_spec())
    self._env = env
    self._listener = listener
    self._lookahead = bool(lookahead)
    self._shortlist = int(shortlist)
    self._discount = float(discount)
    self.name = "lookahead" if lookahead else "greedy"

  def _action(self, time_step, policy_state):
    obs = time_step.observation
    mask = np.asarray(obs["candidate_mask"])
    ids = np.asarray(obs["candidate_ids"])
    context = self._env.session_context()
    p_now = self._listener.listen_probability(context, ids, independent=True)
    p_now = np.where(mask, p_now, -1.0)
    if not self._lookahead:
      return policy_step.PolicyStep(p_now.argmax(1).astype(np.int32),
                                    policy_state, ())
    b, m = len(ids), min(self._shortlist, ids.shape[1])
    short = np.argsort(-p_now, axis=1, kind="stable")[:, :m]       # [B, m]
    short_ok = np.take_along_axis(mask, short, 1)
    first = np.repeat(short, m, axis=1)                             # [B, m*m]
    second = np.tile(short, (1, m))
    pairs = np.stack([np.take_along_axis(ids, first, 1),
                      np.take_along_axis(ids, second, 1)], axis=-1)
    rows = np.repeat(np.arange(b), m * m)
    p_next = self._listener.listen_probability(
        _take(context, rows), pairs.reshape(-1, 2))[:, 1].reshape(b, m, m)
    usable = (short_ok[:, None, :] & short_ok[:, :, None] &
              ~np.eye(m, dtype=bool)[None])
    best_next = np.where(usable, p_next, 0.0).max(axis=2)           # [B, m]
    value = np.take_along_axis(p_now, short, 1) + self._discount * best_next
    value = np.where(short_ok, value, -np.inf)
    action = short[np.arange(b), value.argmax(1)]
    return policy_step.PolicyStep(action.astype(np.int32), policy_state, ())
