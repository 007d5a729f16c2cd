"""Evaluation of playlist policies: offline (simulator, logged data), online.

* `estimators`, `robust`, `slate`, `sequential`: off-policy estimators in
  the style of Open Bandit Pipeline (frozen dataclasses with
  `estimate_policy_value` and a bootstrap `estimate_interval`) on plain
  NumPy arrays, per decision (also in OBP's argument form, `inputs`), per
  slate and per session; none of them imports TensorFlow;
* `marginal`: session estimators with marginalised state weights (MIS, MDR);
* `offpolicy`: `OffPolicyEvaluation`, OBP's runner; `regression`: the
  cross-fitted `RegressionModel` and `estimate_propensities`;
* `stats`: bootstrap intervals, rank agreement; `comparison`:
  `compare_policies` (loaded on first use: it runs policies in the
  simulator, so it needs TensorFlow) and the agents' final comparison;
* `policies`: the evaluated policies by name, with exact-probability
  stochastic score policies; `simulated`: runs on held-out logged sessions;
  `logged`: the estimators checked against the listener world;
* `evaluate`: `evaluate_policies`, which writes evaluation.json and the
  report (`report`).
"""

import importlib
import os
import sys
from typing import Any

# Some modules here (simulated, logged, evaluate) use TF-Agents, which needs
# Keras 2; the estimators do not, so TensorFlow is not imported for it: the
# variable is set, or checked by `user_models._keras2` if TensorFlow is loaded.
if "tensorflow" in sys.modules:
  importlib.import_module("user_models._keras2")
else:
  os.environ["TF_USE_LEGACY_KERAS"] = "1"

from playlist_sim.evaluation.estimators import BanditEstimator
from playlist_sim.evaluation.estimators import DM
from playlist_sim.evaluation.estimators import DR
from playlist_sim.evaluation.estimators import DirectMethod
from playlist_sim.evaluation.estimators import DoublyRobust
from playlist_sim.evaluation.estimators import EstimatorInputError
from playlist_sim.evaluation.estimators import IPS
from playlist_sim.evaluation.estimators import InversePropensityScoring
from playlist_sim.evaluation.estimators import SNIPS
from playlist_sim.evaluation.estimators import SelfNormalizedInversePropensityScoring
from playlist_sim.evaluation.estimators import relative_error
from playlist_sim.evaluation.marginal import MDR
from playlist_sim.evaluation.marginal import MIS
from playlist_sim.evaluation.marginal import MarginalizedDoublyRobust
from playlist_sim.evaluation.marginal import MarginalizedImportanceSampling
from playlist_sim.evaluation.offpolicy import OffPolicyEvaluation
from playlist_sim.evaluation.regression import RegressionModel
from playlist_sim.evaluation.regression import estimate_propensities
from playlist_sim.evaluation.robust import DRos
from playlist_sim.evaluation.robust import DoublyRobustWithShrinkage
from playlist_sim.evaluation.robust import SNDR
from playlist_sim.evaluation.robust import SelfNormalizedDoublyRobust
from playlist_sim.evaluation.robust import SubGaussianIPS
from playlist_sim.evaluation.robust import SubGaussianInversePropensityScoring
from playlist_sim.evaluation.robust import SwitchDR
from playlist_sim.evaluation.robust import SwitchDoublyRobust
from playlist_sim.evaluation.sequential import PDIS
from playlist_sim.evaluation.sequential import PerDecisionImportanceSampling
from playlist_sim.evaluation.sequential import SequentialDR
from playlist_sim.evaluation.sequential import SequentialDoublyRobust
from playlist_sim.evaluation.sequential import SequentialEstimator
from playlist_sim.evaluation.sequential import WPDIS
from playlist_sim.evaluation.sequential import WeightedPerDecisionImportanceSampling
from playlist_sim.evaluation.slate import CascadeDR
from playlist_sim.evaluation.slate import IIPS
from playlist_sim.evaluation.slate import PI
from playlist_sim.evaluation.slate import PseudoInverse
from playlist_sim.evaluation.slate import RIPS
from playlist_sim.evaluation.slate import SIPS
from playlist_sim.evaluation.slate import SlateCascadeDoublyRobust
from playlist_sim.evaluation.slate import SlateEstimator
from playlist_sim.evaluation.slate import SlateIndependentIPS
from playlist_sim.evaluation.slate import SlateRewardInteractionIPS
from playlist_sim.evaluation.slate import SlateStandardIPS
from playlist_sim.evaluation.stats import agreement
from playlist_sim.evaluation.stats import bootstrap_mean
from playlist_sim.evaluation.stats import bootstrap_ratio
from playlist_sim.evaluation.stats import kendall
from playlist_sim.evaluation.stats import spearman

__all__ = [
    "BanditEstimator",
    "CascadeDR",
    "DM",
    "DR",
    "DRos",
    "DirectMethod",
    "DoublyRobust",
    "DoublyRobustWithShrinkage",
    "EstimatorInputError",
    "IIPS",
    "IPS",
    "InversePropensityScoring",
    "MDR",
    "MIS",
    "MarginalizedDoublyRobust",
    "MarginalizedImportanceSampling",
    "OffPolicyEvaluation",
    "PDIS",
    "PI",
    "PerDecisionImportanceSampling",
    "PseudoInverse",
    "RIPS",
    "RegressionModel",
    "SIPS",
    "SNDR",
    "SNIPS",
    "SelfNormalizedDoublyRobust",
    "SelfNormalizedInversePropensityScoring",
    "SequentialDR",
    "SequentialDoublyRobust",
    "SequentialEstimator",
    "SlateCascadeDoublyRobust",
    "SlateEstimator",
    "SlateIndependentIPS",
    "SlateRewardInteractionIPS",
    "SlateStandardIPS",
    "SubGaussianIPS",
    "SubGaussianInversePropensityScoring",
    "SwitchDR",
    "SwitchDoublyRobust",
    "WPDIS",
    "WeightedPerDecisionImportanceSampling",
    "agreement",
    "bootstrap_mean",
    "bootstrap_ratio",
    "compare_policies",
    "estimate_propensities",
    "kendall",
    "relative_error",
    "spearman",
]


def __getattr__(name: str) -> Any:
  # `compare_policies` runs policies in the simulator (TensorFlow); the rest
  # of the package is NumPy, so it loads only when asked for.
  if name != "compare_policies":
    raise AttributeError(
        f"module 'playlist_sim.evaluation' has no attribute {name!r}")
  value = importlib.import_module("playlist_sim.evaluation.comparison")
  globals()[name] = value.compare_policies
  return value.compare_policies
