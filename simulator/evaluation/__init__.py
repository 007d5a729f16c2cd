"""Evaluation of playlist policies: offline (simulator, logged data), online.

* `estimators`, `sequential`: off-policy estimators in the style of Open
  Bandit Pipeline (frozen dataclasses with `estimate_policy_value` and a
  bootstrap `estimate_interval`) on plain NumPy arrays, per decision and per
  session;
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
from simulator.evaluation.sequential import PDIS
from simulator.evaluation.sequential import PerDecisionImportanceSampling
from simulator.evaluation.sequential import SequentialDR
from simulator.evaluation.sequential import SequentialDoublyRobust
from simulator.evaluation.sequential import SequentialEstimator
from simulator.evaluation.sequential import WPDIS
from simulator.evaluation.sequential import WeightedPerDecisionImportanceSampling
from simulator.evaluation.stats import agreement
from simulator.evaluation.stats import bootstrap_mean
from simulator.evaluation.stats import bootstrap_ratio
from simulator.evaluation.stats import compare_policies
from simulator.evaluation.stats import kendall
from simulator.evaluation.stats import spearman

__all__ = [
    "BanditEstimator",
    "DM",
    "DR",
    "DirectMethod",
    "DoublyRobust",
    "EstimatorInputError",
    "IPS",
    "InversePropensityScoring",
    "PDIS",
    "PerDecisionImportanceSampling",
    "SNIPS",
    "SelfNormalizedInversePropensityScoring",
    "SequentialDR",
    "SequentialDoublyRobust",
    "SequentialEstimator",
    "WPDIS",
    "WeightedPerDecisionImportanceSampling",
    "agreement",
    "bootstrap_mean",
    "bootstrap_ratio",
    "compare_policies",
    "kendall",
    "relative_error",
    "spearman",
]
