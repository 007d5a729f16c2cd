"""What each policy name in an evaluation means, for the report's legend.

Names come from four places: the baselines (`agents.BASELINES`), the
user-model and oracle policies of `playlist_sim.evaluation.comparison`, the
stochastic score policies (`playlist_sim.policies.softmax.DEFAULT_STOCHASTIC`,
described from their `SoftmaxSpec`, so a changed spec changes its description),
and trained agents (saved policies).
"""

from playlist_sim.policies.softmax import DEFAULT_STOCHASTIC, SoftmaxSpec

__all__ = ["FAMILIES", "describe_policy", "policy_family"]

_FIXED = {
    "random": ("baseline", "a uniformly random available track"),
    "popularity": ("baseline", "the most popular available track (catalog "
                   "popularity rank)"),
    "cosine": ("baseline", "the track whose acoustic vector is closest "
               "(cosine) to the listener's observed taste features"),
    "greedy": ("baseline", "greedy by the learned user model: the track it "
               "predicts most likely to be listened to now, blind to the "
               "rest of the session"),
    "greedy_user_model": ("baseline", "greedy by the training user model "
                          "(as `greedy`), in an agent's comparison"),
    "greedy_oracle": ("oracle", "greedy by the listener world's true "
                      "P(listen): an upper reference a real system cannot "
                      "reach (it reads the hidden listener)"),
    "lookahead_oracle": ("oracle", "the world's true P(listen) with a "
                         "one-step lookahead (this track's listen chance "
                         "plus the best next track's, given this one): "
                         "an upper reference that accounts for order"),
    "ahdqn": ("agent", "AH-DQN (action-head DQN, Spotify KDD 2023) trained "
              "in the learned simulator; its greedy policy"),
    "dqn": ("agent", "DQN over fixed pool slots, trained in the learned "
            "simulator; its greedy policy"),
    "ppo": ("agent", "PPO trained in the learned simulator; its greedy "
            "policy"),
}

#: Families in the order the report draws them.
FAMILIES = ("agent", "baseline", "oracle", "logging policy family")


def _describe_softmax(name: str, spec: SoftmaxSpec) -> str:
  logging = DEFAULT_STOCHASTIC["logging"]
  score = (f"{spec.popularity_weight:g} x popularity + "
           f"{spec.taste_weight:g} x taste" if spec.popularity_weight else
           f"{spec.taste_weight:g} x taste (no popularity)")
  text = (f"samples a track from softmax(({score}) / {spec.temperature:g})")
  if spec.epsilon:
    text += (f", mixed with a uniform choice {spec.epsilon:.0%} of the "
             "time")
  if name == "logging":
    return text + ": the policy that wrote the logs"
  if spec.temperature < logging.temperature and not spec.epsilon:
    text += " (sharper than the logging policy: towards greedy-by-score)"
  elif spec.temperature > logging.temperature:
    text += " (flatter than the logging policy: towards uniform)"
  return text


def policy_family(name: str,
                  stochastic: dict[str, SoftmaxSpec] | None = None) -> str:
  """The family of `name` (one of `FAMILIES`); unknown names are agents."""
  stochastic = DEFAULT_STOCHASTIC if stochastic is None else stochastic
  if name in stochastic:
    return "logging policy family"
  return _FIXED.get(name, ("agent", ""))[0]


def describe_policy(name: str,
                    stochastic: dict[str, SoftmaxSpec] | None = None,
                    saved_policies: dict[str, str] | None = None) -> str:
  """One sentence on what the policy `name` does.

  Args:
    name: a policy name of an evaluation.
    stochastic: the stochastic specs evaluated (default
      `DEFAULT_STOCHASTIC`).
    saved_policies: name -> policy folder of the saved agents.

  Returns:
    The description.
  """
  stochastic = DEFAULT_STOCHASTIC if stochastic is None else stochastic
  if name in stochastic:
    return _describe_softmax(name, stochastic[name])
  if name in _FIXED:
    return _FIXED[name][1]
  if saved_policies and name in saved_policies:
    return "a trained agent's saved policy"
  return "a policy of this evaluation (no description known)"
