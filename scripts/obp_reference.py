"""Freezes Open Bandit Pipeline 0.5.7's estimates as a test fixture.

Not run by the tests and not run in the project's environment: OBP 0.5.7
needs Python < 3.11, NumPy 1.x and PyTorch, so it runs in a separate venv:

    python3 -m venv /work/obpvenv
    /work/obpvenv/bin/pip install obp==0.5.7 --no-deps --ignore-requires-python
    /work/obpvenv/bin/pip install "numpy<2" scipy scikit-learn pandas tqdm \
        matplotlib seaborn
    /work/obpvenv/bin/python scripts/obp_reference.py \
        --out tests/fixtures/obp_reference.npz

`obp.utils` imports torch at the top but the estimators used here never call
it, so an empty stand-in module is installed under that name instead of
PyTorch. The inputs are drawn with a fixed seed and saved with OBP's
estimates; `tests/playlist_sim/evaluation/test_ope_obp.py` checks that our
estimators give the same numbers on them.
"""

import argparse
import importlib
import importlib.util
import os
import sys
import types

import numpy as np


def _obp_modules() -> tuple[types.ModuleType, types.ModuleType, str]:
  """OBP's estimator modules without running obp/__init__ (which imports
  its PyTorch policies): the packages are registered as bare namespaces."""
  stand_in = types.ModuleType("torch")
  stand_in.Tensor = type("Tensor", (), {})  # SciPy probes torch.Tensor.
  stand_in.tensor = stand_in.Tensor  # obp.utils annotates with it.
  sys.modules.setdefault("torch", stand_in)
  root = importlib.util.find_spec("obp").submodule_search_locations[0]
  for name, path in (("obp", root), ("obp.ope", os.path.join(root, "ope"))):
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package
  version = importlib.import_module("obp.version").__version__
  return (importlib.import_module("obp.ope.estimators"),
          importlib.import_module("obp.ope.estimators_slate"), version)


obp_est, obp_slate, OBP_VERSION = _obp_modules()

__all__ = ["bandit_case", "main", "slate_case"]


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
  shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
  return shifted / shifted.sum(axis=axis, keepdims=True)


def bandit_case(rng: np.random.Generator, n: int = 300, actions: int = 4,
                positions: int = 2) -> tuple[dict, dict]:
  """Bandit inputs in OBP's form and OBP's estimates on them."""
  logging = _softmax(rng.normal(size=(n, actions, positions)), axis=1)
  target = _softmax(2.0 * rng.normal(size=(n, actions, positions)), axis=1)
  position = rng.integers(0, positions, size=n)
  action = np.array([rng.choice(actions, p=logging[i, :, position[i]])
                     for i in range(n)])
  pscore = logging[np.arange(n), action, position]
  truth = rng.uniform(0.1, 0.9, size=(n, actions, positions))
  reward = rng.binomial(1, truth[np.arange(n), action, position]).astype(
      np.float64)
  model = np.clip(truth + rng.normal(0.0, 0.1, size=truth.shape), 0.0, 1.0)
  inputs = dict(reward=reward, action=action, position=position,
                pscore=pscore, action_dist=target,
                estimated_rewards_by_reg_model=model)
  estimators = {
      "ips": obp_est.InverseProbabilityWeighting(),
      "ips_clip3": obp_est.InverseProbabilityWeighting(lambda_=3.0),
      "snips": obp_est.SelfNormalizedInverseProbabilityWeighting(),
      "dm": obp_est.DirectMethod(),
      "dr": obp_est.DoublyRobust(),
      "dr_clip3": obp_est.DoublyRobust(lambda_=3.0),
      "switch_dr2": obp_est.SwitchDoublyRobust(lambda_=2.0),
      "dr_os1": obp_est.DoublyRobustWithShrinkage(lambda_=1.0),
      "dr_os10": obp_est.DoublyRobustWithShrinkage(lambda_=10.0),
      "sndr": obp_est.SelfNormalizedDoublyRobust(),
      "sg_ips01": obp_est.SubGaussianInverseProbabilityWeighting(lambda_=0.1),
      "sg_ips05": obp_est.SubGaussianInverseProbabilityWeighting(lambda_=0.5),
  }
  estimates = {}
  for name, estimator in estimators.items():
    args = dict(inputs)
    if name == "dm":
      args = dict(action_dist=target, estimated_rewards_by_reg_model=model,
                  position=position)
    elif name.startswith(("ips", "snips", "sg_ips")):
      args.pop("estimated_rewards_by_reg_model")
    estimates[name] = float(estimator.estimate_policy_value(**args))
  return inputs, estimates


def slate_case(rng: np.random.Generator, slates: int = 200, length: int = 3,
               items: int = 6) -> tuple[dict, dict]:
  """Slate inputs in OBP's form (items without replacement, cascade
  probabilities exact) and OBP's estimates on them."""
  rows = slates * length
  action = np.zeros(rows, np.int64)
  cascade = np.zeros(rows)
  target_cascade = np.zeros(rows)
  target_dist = np.zeros((rows, items))
  for s in range(slates):
    logits_log, logits_target = rng.normal(size=items), 2 * rng.normal(
        size=items)
    left = np.ones(items, bool)
    mu, pi = 1.0, 1.0
    for l in range(length):
      p_log = _softmax(np.where(left, logits_log, -np.inf), 0)
      p_target = _softmax(np.where(left, logits_target, -np.inf), 0)
      a = rng.choice(items, p=p_log)
      mu, pi = mu * p_log[a], pi * p_target[a]
      row = s * length + l
      action[row], cascade[row], target_cascade[row] = a, mu, pi
      target_dist[row] = p_target
      left[a] = False
  slate_id = np.repeat(np.arange(slates), length)
  position = np.tile(np.arange(length), slates)
  reward = rng.binomial(1, 0.3 + 0.1 * (action % 3)).astype(np.float64)
  pscore = np.repeat(cascade[length - 1::length], length)
  target_pscore = np.repeat(target_cascade[length - 1::length], length)
  item_position = rng.uniform(0.1, 1.0, size=rows)
  target_item_position = rng.uniform(0.0, 1.0, size=rows)
  q_hat = rng.uniform(0.0, length, size=(rows, items))
  inputs = dict(
      slate_id=slate_id, position=position, reward=reward, action=action,
      pscore=pscore, evaluation_policy_pscore=target_pscore,
      pscore_item_position=item_position,
      evaluation_policy_pscore_item_position=target_item_position,
      pscore_cascade=cascade,
      evaluation_policy_pscore_cascade=target_cascade, q_hat=q_hat,
      evaluation_policy_action_dist=target_dist)
  common = dict(slate_id=slate_id, reward=reward, position=position)
  estimates = {
      "sips": obp_slate.SlateStandardIPS(len_list=length)
      .estimate_policy_value(**common, pscore=pscore,
                             evaluation_policy_pscore=target_pscore),
      "iips": obp_slate.SlateIndependentIPS(len_list=length)
      .estimate_policy_value(
          **common, pscore_item_position=item_position,
          evaluation_policy_pscore_item_position=target_item_position),
      "rips": obp_slate.SlateRewardInteractionIPS(len_list=length)
      .estimate_policy_value(
          **common, pscore_cascade=cascade,
          evaluation_policy_pscore_cascade=target_cascade),
      "cascade_dr": obp_slate.SlateCascadeDoublyRobust(
          len_list=length, n_unique_action=items).estimate_policy_value(
              **common, action=action, pscore_cascade=cascade,
              evaluation_policy_pscore_cascade=target_cascade,
              q_hat=q_hat.ravel(),
              evaluation_policy_action_dist=target_dist.ravel()),
  }
  return inputs, {k: float(v) for k, v in estimates.items()}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--seed", type=int, default=20230806)
  args = parser.parse_args()
  rng = np.random.default_rng(args.seed)
  bandit_inputs, bandit_estimates = bandit_case(rng)
  slate_inputs, slate_estimates = slate_case(rng)
  arrays = {f"bandit/{k}": v for k, v in bandit_inputs.items()}
  arrays.update({f"slate/{k}": v for k, v in slate_inputs.items()})
  arrays.update({f"obp_bandit/{k}": np.float64(v)
                 for k, v in bandit_estimates.items()})
  arrays.update({f"obp_slate/{k}": np.float64(v)
                 for k, v in slate_estimates.items()})
  arrays["obp_version"] = np.array(OBP_VERSION)
  np.savez_compressed(args.out, **arrays)
  for group in (bandit_estimates, slate_estimates):
    for name, value in group.items():
      print(f"{name:<12} {value:.12f}")


if __name__ == "__main__":
  main()
