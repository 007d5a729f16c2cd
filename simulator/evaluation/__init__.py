"""Evaluation of playlist policies: offline (simulator, logged data), online.

* `estimators`, `robust`, `slate`, `sequential`: off-policy estimators in
  the style of Open Bandit Pipeline (frozen dataclasses with
  `estimate_policy_value` and a bootstrap `estimate_interval`) on plain
  NumPy arrays, per decision (also in OBP's argument form, `inputs`), per
  slate and per session; none of them imports TensorFlow;
* `marginal`: session estimators with marginalised state weights (MIS, MDR);
* `offpolicy`: `OffPolicyEvaluation`, OBP's runner; `regression`: the
  cross-fitted `RegressionModel` and `estimate_propensities`;
* `stats`: bootstrap intervals, `compare_policies`, rank agreement;
* `policies`: the evaluated policies by name, with exact-probability
  stochastic score policies; `simulated`: runs on held-out logged sessions;
  `logged`: the estimators checked against the listener world;
* `evaluate`: `evaluate_policies`, which writes evaluation.json and the
  report (`report`).
"""

from simulator.evaluation.estimators import BanditEstimator
from simulator.evaluation.estimators import DM
from simulator.evaluation.estimators import DR
from simulator.evaluation.estimators import DirectMethod
from simulator.evaluation.estimators import DoublyRobust
from simulator.evaluation.estimators import EstimatorInputError
from simulator.evaluation.estimators import IPS
from simulator.evaluation.estimators import InversePropensityScoring
from simulator.evaluation.estimators import SNIPS
from simulator.evaluation.estimators import SelfNormalizedInversePropensityScoring
from simulator.evaluation.estimators import relative_error
from simulator.evaluation.marginal import MDR
from simulator.evaluation.marginal import MIS
from simulator.evaluation.marginal import MarginalizedDoublyRobust
from simulator.evaluation.marginal import MarginalizedImportanceSampling
from simulator.evaluation.offpolicy import OffPolicyEvaluation
from simulator.evaluation.regression import RegressionModel
from simulator.evaluation.regression import estimate_propensities
from simulator.evaluation.robust import DRos
from simulator.evaluation.robust import DoublyRobustWithShrinkage
from simulator.evaluation.robust import SNDR
from simulator.evaluation.robust import SelfNormalizedDoublyRobust
from simulator.evaluation.robust import SubGaussianIPS
from simulator.evaluation.robust import SubGaussianInversePropensityScoring
from simulator.evaluation.robust import SwitchDR
from simulator.evaluation.robust import SwitchDoublyRobust
from simulator.evaluation.sequential import PDIS
from simulator.evaluation.sequential import PerDecisionImportanceSampling
from simulator.evaluation.sequential import SequentialDR
from simulator.evaluation.sequential import SequentialDoublyRobust
from simulator.evaluation.sequential import SequentialEstimator
from simulator.evaluation.sequential import WPDIS
from simulator.evaluation.sequential import WeightedPerDecisionImportanceSampling
from simulator.evaluation.slate import CascadeDR
from simulator.evaluation.slate import IIPS
from simulator.evaluation.slate import PI
from simulator.evaluation.slate import PseudoInverse
from simulator.evaluation.slate import RIPS
from simulator.evaluation.slate import SIPS
from simulator.evaluation.slate import SlateCascadeDoublyRobust
from simulator.evaluation.slate import SlateEstimator
from simulator.evaluation.slate import SlateIndependentIPS
from simulator.evaluation.slate import SlateRewardInteractionIPS
from simulator.evaluation.slate import SlateStandardIPS
from simulator.evaluation.stats import agreement
from simulator.evaluation.stats import bootstrap_mean
from simulator.evaluation.stats import bootstrap_ratio
from simulator.evaluation.stats import compare_policies
from simulator.evaluation.stats import kendall
from simulator.evaluation.stats import spearman

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
