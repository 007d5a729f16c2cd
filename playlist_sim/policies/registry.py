"""Every policy of the package by name: the one registry, `make_policy`.

* baselines (`BASELINES`): random, popularity, cosine;
* `greedy_user_model` (canonical; `greedy` is accepted as the same policy):
  greedy by a user model's predicted listen probability;
* oracles (`ORACLES`): greedy and one-step lookahead by the listener world's
  true probabilities (the environment's user model must be the world's
  `ParametricListener`);
* stochastic score policies: a `SoftmaxSpec` by name (`DEFAULT_STOCHASTIC`:
  the logging policy and the targets of off-policy evaluation);
* saved agents: any `PolicySaver` SavedModel folder (e.g. a `train_eval`
  run's `root_dir/policy`), loaded with `tf.saved_model.load`.
"""

from tf_agents.policies import py_policy
from tf_agents.policies import py_tf_eager_policy

from playlist_sim.policies.baselines import BASELINES
from playlist_sim.policies.baselines import GreedyUserModelPolicy
from playlist_sim.policies.baselines import make_baseline_policy
from playlist_sim.policies.oracle import OraclePolicy
from playlist_sim.policies.score_features import SCORE_KEY
from playlist_sim.policies.score_features import ScoredObservationPolicy
from playlist_sim.policies.softmax import DEFAULT_STOCHASTIC
from playlist_sim.policies.softmax import SoftmaxSpec
from playlist_sim.policies.softmax import softmax_policy
from user_models.listener import ParametricListener

__all__ = ["GREEDY_NAMES", "GREEDY_USER_MODEL", "ORACLES", "canonical_name",
           "make_policy"]

#: The canonical name of greedy-by-a-user-model.
GREEDY_USER_MODEL = "greedy_user_model"
#: Names of greedy-by-a-user-model: the canonical one and the evaluation's.
GREEDY_NAMES = (GREEDY_USER_MODEL, "greedy")
ORACLES = ("greedy_oracle", "lookahead_oracle")


def canonical_name(name: str) -> str:
  """The registry's canonical name of `name` ("greedy" -> GREEDY_USER_MODEL).

  Args:
    name: a policy name.

  Returns:
    The canonical name (other names are returned as they are).
  """
  return GREEDY_USER_MODEL if name in GREEDY_NAMES else name


def _saved_policy(name: str, path: str, env, scorer) -> py_policy.PyPolicy:
  """A SavedModel policy, scored by `scorer` if it reads the model's scores."""
  # tf.saved_model.load under the hood, with the specs PolicySaver wrote.
  policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
      path, load_specs_from_pbtxt=True, batch_time_steps=False)
  if (SCORE_KEY in policy.time_step_spec.observation
      and SCORE_KEY not in env.observation_spec()):
    if scorer is None:
      raise ValueError(
          f"saved policy {name!r} ({path}) reads the learned model's scores "
          f"({SCORE_KEY!r}): pass a scorer")
    # Scored by the learned model it was trained with, never the world.
    policy = ScoredObservationPolicy(policy, env, scorer)
  return policy


def make_policy(name: str, env, *, scorer=None,
                stochastic: dict[str, SoftmaxSpec] | None = None,
                saved_policies: dict[str, str] | None = None,
                seed: int = 0) -> py_policy.PyPolicy:
  """Builds the policy called `name` for a batched `TFAgtPyEnvironment`.

  Args:
    name: a baseline, "greedy_user_model" (or "greedy"), an oracle, a key of
      `stochastic` or of `saved_policies`.
    env: the environment (its specs, catalog and current listeners).
    scorer: the user model greedy ranks with (and that scores the
      candidates for saved policies trained with `user_model_scores`).
    stochastic: name -> `SoftmaxSpec` (default `DEFAULT_STOCHASTIC`).
    saved_policies: name -> SavedModel folder of a TF-Agents policy.
    seed: seed of random and stochastic policies.

  Returns:
    A PyPolicy for batched time steps.

  Raises:
    ValueError: for an unknown name, greedy (or a saved policy that reads
      scores) without a scorer, or an oracle outside the listener world.
  """
  stochastic = DEFAULT_STOCHASTIC if stochastic is None else stochastic
  saved_policies = saved_policies or {}
  catalog = env.environment.catalog
  if name in saved_policies:
    return _saved_policy(name, saved_policies[name], env, scorer)
  if name in stochastic:
    return softmax_policy(env.time_step_spec(), env.action_spec(), catalog,
                          stochastic[name], seed=seed, name=name)
  if name in GREEDY_NAMES:
    if scorer is None:
      raise ValueError(f"policy {name!r} needs a scorer (a user model)")
    return GreedyUserModelPolicy(
        env.time_step_spec(), env.action_spec(), scorer,
        user_ids_fn=lambda: env.environment.session_context().user_ids,
        name=name)
  if name in ORACLES:
    listener = env.environment.user_model
    if not isinstance(listener, ParametricListener):
      raise ValueError(f"policy {name!r} reads the listener world's truth: "
                       f"the environment's user model must be a "
                       f"ParametricListener, got {type(listener).__name__}")
    return OraclePolicy(env.environment, listener,
                        lookahead=name == "lookahead_oracle")
  if name in BASELINES:
    return make_baseline_policy(name, env.time_step_spec(), env.action_spec(),
                                catalog, seed)
  raise ValueError(f"unknown policy {name!r}: choose a baseline {BASELINES}, "
                   f"{' or '.join(map(repr, GREEDY_NAMES))}, an oracle "
                   f"{ORACLES}, a stochastic policy {tuple(stochastic)} or a "
                   f"saved policy {tuple(saved_policies)}")
