"""A training resumed with collect workers collects new episodes, not the
ones its first workers collected (worker seeds follow the train step)."""

import pytest

from agents import q_learning
from agents import train_eval as train_eval_lib
from agents.distributed_collection import DistributedCollector
from tests.agents.test_distributed_collection import _episode_keys
from tests.agents.test_train_eval import TINY_RUN, _parse_tiny_world

# Two tiny trainings: the integration tier.
pytestmark = pytest.mark.integration


class _InProcessCollector(DistributedCollector):
  """`train_eval`'s collector with its workers in this process (no Ray),
  recording the train step and the experience of every collect."""

  calls: list = []

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **{**kwargs, "use_ray": False,
                               "ray_address": None})

  def collect(self, policy, num_steps, epsilon=0.1, step=0):
    experience = super().collect(policy, num_steps, epsilon, step)
    _InProcessCollector.calls.append((step, experience))
    return experience


def test_a_resumed_training_meets_new_episodes(tmp_path, monkeypatch):
  monkeypatch.setattr(q_learning, "DistributedCollector", _InProcessCollector)
  root = str(tmp_path / "run")
  _parse_tiny_world()
  train_eval_lib.train_eval(root, num_iterations=2, collect_workers=1,
                            **TINY_RUN)
  first, _InProcessCollector.calls = _InProcessCollector.calls, []
  _parse_tiny_world()
  resumed = train_eval_lib.train_eval(root, num_iterations=4,
                                      collect_workers=1,
                                      allow_config_change=True, **TINY_RUN)
  assert resumed["resumed_from_step"] == 2
  # Fresh workers start at the checkpoint's step, seeded from it ...
  assert first[0][0] == 0 and _InProcessCollector.calls[0][0] == 2
  # ... so none of their episodes is one the first run's workers collected.
  before = _episode_keys([e for _, e in first])
  after = _episode_keys([e for _, e in _InProcessCollector.calls])
  assert before and after and not before & after
