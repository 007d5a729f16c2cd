"""Off-policy evaluation of playlist policies from logged data.

Estimators in the style of Open Bandit Pipeline (frozen dataclasses with
`estimate_policy_value` and a bootstrap `estimate_interval`) on plain NumPy
arrays: per-decision (bandit) estimators in `estimators`, per-session
(sequential) ones in `sequential`.
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
    "relative_error",
]
