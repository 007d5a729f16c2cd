"""Off-policy estimators for slates (ranked lists of items).

Our environment places a slate of L tracks per decision
(`DiscreteTrackSampler.slate_size`, 2-5) and the listener reacts to each
position, so a logged slate s is L_s rows, one per position l = 0..L_s - 1,
with reward r_{s,l}; the value of a policy is the expected slate reward
sum_l r_{s,l}. The inputs follow Open Bandit Pipeline's slate estimators
(`obp.ope.estimators_slate`): one row per (slate, position), rows grouped
by slate with positions in order, and per row

  pscore [_item_position | _cascade]                 the logging policy's
  evaluation_policy_pscore [_item_position | _cascade]   and target's
  probability of the logged slate (joint), of the logged item at its
  position (marginal), or of the logged items at positions 0..l (cascade).

Weights: w = evaluation / logging of the matching kind. Slates are the
bootstrap units of `estimate_interval`.
"""

import abc
import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from playlist_sim.evaluation.estimators import _bootstrap_interval
from playlist_sim.evaluation.estimators import _mean_of
from playlist_sim.evaluation.estimators import _Statistic
from playlist_sim.evaluation.inputs import EstimatorInputError
from playlist_sim.evaluation.inputs import check_lengths
from playlist_sim.evaluation.inputs import check_range
from playlist_sim.evaluation.inputs import real_array
from playlist_sim.evaluation.sequential import _check_positions
from playlist_sim.evaluation.sequential import _offsets_from_ids

__all__ = [
    "CascadeDR",
    "IIPS",
    "PI",
    "PseudoInverse",
    "RIPS",
    "SIPS",
    "SLATE_ARGUMENTS",
    "SlateCascadeDoublyRobust",
    "SlateEstimator",
    "SlateIndependentIPS",
    "SlateRewardInteractionIPS",
    "SlateStandardIPS",
]

#: The inputs of every slate estimator (OBP's names).
SLATE_ARGUMENTS = (
    "slate_id", "position", "reward", "pscore", "evaluation_policy_pscore",
    "pscore_item_position", "evaluation_policy_pscore_item_position",
    "pscore_cascade", "evaluation_policy_pscore_cascade", "action", "q_hat",
    "evaluation_policy_action_dist")

_PAIRS = {  # weight kind -> (logging argument, target argument)
    "slate": ("pscore", "evaluation_policy_pscore"),
    "item_position": ("pscore_item_position",
                      "evaluation_policy_pscore_item_position"),
    "cascade": ("pscore_cascade", "evaluation_policy_pscore_cascade"),
}


@dataclasses.dataclass(frozen=True)
class _Slates:
  """Validated rows with their slate structure."""
  arrays: dict[str, np.ndarray]
  offsets: np.ndarray  # int64 [S + 1]
  slate_index: np.ndarray  # int64 [R]
  position: np.ndarray  # int64 [R], 0-based
  weights: np.ndarray  # [R], w of the estimator's kind

  @property
  def num_slates(self) -> int:
    return self.offsets.size - 1

  def slate_sums(self, row_terms: np.ndarray) -> np.ndarray:
    return np.bincount(self.slate_index, weights=row_terms,
                       minlength=self.num_slates)


@dataclasses.dataclass(frozen=True)
class SlateEstimator(abc.ABC):
  """Base of the slate estimators: OBP's slate arguments, slate bootstrap."""
  estimator_name: ClassVar[str] = "slate"
  weight_kind: ClassVar[str] = "slate"
  uses_model: ClassVar[bool] = False

  @abc.abstractmethod
  def _statistic(self, data: _Slates) -> _Statistic:
    """The estimate as a function of slate multiplicities (None: once)."""

  def _prepare(self, given: dict[str, ArrayLike | None]) -> _Slates:
    owner = self.estimator_name
    logging_name, target_name = _PAIRS[self.weight_kind]
    needed = ["reward", logging_name, target_name]
    if self.uses_model:
      needed += ["action", "q_hat", "evaluation_policy_action_dist"]
    arrays = {name: real_array(owner, name, given[name])
              for name in needed if name not in (
                  "action", "q_hat", "evaluation_policy_action_dist")}
    check_lengths(owner, arrays, ("reward",))
    num_rows = arrays["reward"].shape[0]
    check_range(owner, logging_name, arrays[logging_name], low_open=True)
    check_range(owner, target_name, arrays[target_name], low_open=False)
    if given["slate_id"] is None:
      raise EstimatorInputError("slate_id", f"{owner}: slate_id is required")
    offsets = _offsets_from_ids(owner, given["slate_id"], num_rows)
    slate_index = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    position = given["position"]
    if position is None:
      raise EstimatorInputError("position", f"{owner}: position is required")
    position = np.asarray(position)
    if position.dtype.kind not in "iu":
      raise EstimatorInputError(
          "position", f"{owner}: position must be integers 0..L-1, got dtype "
          f"{position.dtype}")
    try:
      position = _check_positions(owner, position + 1, offsets,
                                  slate_index) - 1
    except EstimatorInputError as error:
      raise EstimatorInputError(
          "position", str(error).replace("1..n", "0..L-1 (OBP's 0-based "
                                         "positions)")) from error
    if "action" in needed:
      arrays.update(_model_inputs(owner, given, num_rows))
    return _Slates(arrays=arrays, offsets=offsets, slate_index=slate_index,
                   position=position,
                   weights=arrays[target_name] / arrays[logging_name])

  def estimate_policy_value(
      self, *, slate_id: ArrayLike | None = None,
      position: ArrayLike | None = None, reward: ArrayLike | None = None,
      pscore: ArrayLike | None = None,
      evaluation_policy_pscore: ArrayLike | None = None,
      pscore_item_position: ArrayLike | None = None,
      evaluation_policy_pscore_item_position: ArrayLike | None = None,
      pscore_cascade: ArrayLike | None = None,
      evaluation_policy_pscore_cascade: ArrayLike | None = None,
      action: ArrayLike | None = None, q_hat: ArrayLike | None = None,
      evaluation_policy_action_dist: ArrayLike | None = None) -> float:
    """Estimated expected slate reward (sum over positions) of the target.

    Args:
      slate_id: [R] the slate of each row (rows grouped by slate).
      position: int [R], 0..L_s - 1 within each slate, in order.
      reward: float [R], the reward at each position.
      pscore: float [R], the logging probability of the whole logged slate
        (SIPS, repeated per row).
      evaluation_policy_pscore: float [R], the target's probability of it.
      pscore_item_position: float [R], the logging probability of the
        logged item at its position (IIPS, PI).
      evaluation_policy_pscore_item_position: float [R], the target's.
      pscore_cascade: float [R], the logging probability of the logged items
        at positions 0..l (RIPS, cascade DR).
      evaluation_policy_pscore_cascade: float [R], the target's.
      action: int [R], the logged item index (cascade DR).
      q_hat: float [R, K] (or OBP's flat [R * K]), a model of the slate
        reward from position l on, for each item at position l after the
        logged items before it (cascade DR).
      evaluation_policy_action_dist: float [R, K] (or flat), the target's
        distribution over items at position l given the logged items before
        it (cascade DR).

    Returns:
      The estimate.

    Raises:
      EstimatorInputError: if an input this estimator needs is missing or
        is not real and finite, out of range, of another length, or the
        rows of a slate are not contiguous with positions 0..L_s - 1.
    """
    data = self._prepare(dict(
        slate_id=slate_id, position=position, reward=reward, pscore=pscore,
        evaluation_policy_pscore=evaluation_policy_pscore,
        pscore_item_position=pscore_item_position,
        evaluation_policy_pscore_item_position=(
            evaluation_policy_pscore_item_position),
        pscore_cascade=pscore_cascade,
        evaluation_policy_pscore_cascade=evaluation_policy_pscore_cascade,
        action=action, q_hat=q_hat,
        evaluation_policy_action_dist=evaluation_policy_action_dist))
    return self._statistic(data)(None)

  def estimate_interval(self, *, alpha: float = 0.05,
                        n_bootstrap: int = 1000,
                        seed: int | np.random.Generator = 0,
                        **inputs: ArrayLike | None) -> dict[str, float]:
    """Percentile-bootstrap interval, resampling whole slates.

    Args:
      alpha: the interval covers 1 - alpha.
      n_bootstrap: number of bootstrap replicates.
      seed: seed (or Generator) of the resampling.
      **inputs: as for `estimate_policy_value`.

    Returns:
      {"mean", "ci_low", "ci_high"} of the replicates.

    Raises:
      EstimatorInputError: as `estimate_policy_value`, for an unknown input
        name, or if alpha or n_bootstrap is out of range.
    """
    known = set(SLATE_ARGUMENTS)
    unknown = sorted(set(inputs) - known)
    if unknown:
      raise EstimatorInputError(
          unknown[0], f"{self.estimator_name}: unknown input {unknown[0]!r}; "
          f"expected some of {sorted(known)}")
    data = self._prepare({name: inputs.get(name) for name in known})
    return _bootstrap_interval(self.estimator_name, self._statistic(data),
                               data.num_slates, alpha, n_bootstrap, seed)


def _model_inputs(owner: str, given: dict, num_rows: int
                  ) -> dict[str, np.ndarray]:
  """Cascade DR's action, q_hat [R, K] and target distribution [R, K]."""
  out = {}
  for name in ("q_hat", "evaluation_policy_action_dist"):
    if given[name] is None:
      raise EstimatorInputError(name, f"{owner}: {name} is required")
    flat = real_array(owner, name, np.ravel(np.asarray(given[name])))
    if flat.size % num_rows:
      raise EstimatorInputError(
          name, f"{owner}: {name} has {flat.size} values, not a multiple of "
          f"the {num_rows} rows (it is [R, K] or OBP's flat [R * K])")
    out[name] = flat.reshape(num_rows, -1)
  if out["q_hat"].shape != out["evaluation_policy_action_dist"].shape:
    raise EstimatorInputError(
        "q_hat", f"{owner}: q_hat is {out['q_hat'].shape} but "
        f"evaluation_policy_action_dist is "
        f"{out['evaluation_policy_action_dist'].shape}")
  dist = out["evaluation_policy_action_dist"]
  check_range(owner, "evaluation_policy_action_dist", dist, low_open=False)
  sums = dist.sum(axis=1)
  bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-5)
  if bad.size:
    raise EstimatorInputError(
        "evaluation_policy_action_dist", f"{owner}: "
        f"evaluation_policy_action_dist row {bad[0]} sums to {sums[bad[0]]},"
        " not 1")
  action = np.asarray(given["action"])
  if (action.dtype.kind not in "iu" or action.shape != (num_rows,) or
      np.any(action < 0) or np.any(action >= dist.shape[1])):
    raise EstimatorInputError(
        "action", f"{owner}: action must be {num_rows} integers in [0, "
        f"{dist.shape[1]}), got dtype {action.dtype} and shape "
        f"{action.shape}")
  out["action"] = action.astype(np.int64)
  return out


@dataclasses.dataclass(frozen=True)
class _WeightedRewardIPS(SlateEstimator):
  """(1/S) sum_s sum_l w r_{s,l}: SIPS, IIPS and RIPS differ only in the
  weight w, chosen by `weight_kind`."""

  def _statistic(self, data):
    return _mean_of(data.slate_sums(data.weights * data.arrays["reward"]))


@dataclasses.dataclass(frozen=True)
class SlateStandardIPS(_WeightedRewardIPS):
  """Standard slate IPS (SIPS): the whole slate's weight on every position.

    V_SIPS = (1/S) sum_s w_s sum_l r_{s,l},  w_s = pi(s | x) / mu(s | x).

  Unbiased under any reward structure; its variance grows with the number
  of slates (OBP's `SlateStandardIPS`; Swaminathan et al. 2017's baseline).
  """
  estimator_name: ClassVar[str] = "sips"
  weight_kind: ClassVar[str] = "slate"


@dataclasses.dataclass(frozen=True)
class SlateIndependentIPS(_WeightedRewardIPS):
  """Independent-item IPS (IIPS; Li, Kim & Zitouni, WSDM 2018).

    V_IIPS = (1/S) sum_s sum_l w_{s,l} r_{s,l},
    w_{s,l} = pi(a_l at l | x) / mu(a_l at l | x).

  Unbiased when the reward at a position depends only on the item there.
  """
  estimator_name: ClassVar[str] = "iips"
  weight_kind: ClassVar[str] = "item_position"


@dataclasses.dataclass(frozen=True)
class SlateRewardInteractionIPS(_WeightedRewardIPS):
  """Reward-interaction IPS (RIPS; McInerney et al., KDD 2020).

    V_RIPS = (1/S) sum_s sum_l w_{s,0:l} r_{s,l},
    w_{s,0:l} = pi(a_0..a_l | x) / mu(a_0..a_l | x).

  Unbiased under the cascade assumption: the reward at l depends on the
  items at positions 0..l only, as when a listener goes top to bottom.
  """
  estimator_name: ClassVar[str] = "rips"
  weight_kind: ClassVar[str] = "cascade"


@dataclasses.dataclass(frozen=True)
class SlateCascadeDoublyRobust(SlateEstimator):
  """Cascade doubly robust (Cascade-DR; Kiyohara et al., WSDM 2022).

    V_CDR = (1/S) sum_s sum_l [w_{s,0:l} (r_{s,l} - q_hat_l(a_0..a_l))
                                + w_{s,0:l-1} E_{a ~ pi(.|a_0..a_{l-1})}
                                  q_hat_l(a_0..a_{l-1}, a)],

  w_{s,0:-1} = 1, where q_hat_l models the slate reward from position l on.
  Unbiased under the cascade assumption whatever q_hat; with q_hat = 0 it
  is RIPS. It is sequential DR over positions (`SequentialDR`).
  """
  estimator_name: ClassVar[str] = "cascade_dr"
  weight_kind: ClassVar[str] = "cascade"
  uses_model: ClassVar[bool] = True

  def _statistic(self, data):
    arrays = data.arrays
    rows = np.arange(data.weights.shape[0])
    factual = arrays["q_hat"][rows, arrays["action"]]
    expected = (arrays["q_hat"] *
                arrays["evaluation_policy_action_dist"]).sum(axis=1)
    previous = np.ones_like(data.weights)
    later = np.flatnonzero(data.position > 0)
    previous[later] = data.weights[later - 1]
    terms = data.weights * (arrays["reward"] - factual) + previous * expected
    return _mean_of(data.slate_sums(terms))


@dataclasses.dataclass(frozen=True)
class PseudoInverse(SlateEstimator):
  """Pseudo-inverse estimator (PI; Swaminathan et al., NeurIPS 2017).

    V_PI = (1/S) sum_s (sum_l r_{s,l}) (sum_l w_{s,l} - L_s + 1),
    w_{s,l} = pi(a_l at l | x) / mu(a_l at l | x),

  the closed form of Gamma_mu^+ for a logging policy that fills positions
  independently (their Sec. 3.2). Unbiased when the slate reward is additive
  over positions (each term may depend on the item and position) and that
  holds; with items drawn without replacement it is an approximation, biased
  by the dependence between positions.
  """
  estimator_name: ClassVar[str] = "pi"
  weight_kind: ClassVar[str] = "item_position"

  def _statistic(self, data):
    lengths = np.diff(data.offsets).astype(np.float64)
    slate_weights = data.slate_sums(data.weights) - lengths + 1.0
    return _mean_of(slate_weights * data.slate_sums(data.arrays["reward"]))


# The short names used in the literature.
SIPS = SlateStandardIPS
IIPS = SlateIndependentIPS
RIPS = SlateRewardInteractionIPS
CascadeDR = SlateCascadeDoublyRobust
PI = PseudoInverse
