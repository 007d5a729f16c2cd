"""Collect workers' seeds: from (run seed, worker, train step), so that a
resumed run's workers meet new episodes."""

from agents.distributed_collection import worker_seed


def test_worker_seed_is_a_deterministic_hash_of_its_three_inputs():
  seeds = {worker_seed(s, w, k) for s in (0, 1) for w in (0, 1, 2)
           for k in (0, 1, 500)}
  assert len(seeds) == 18  # Every (seed, worker, step) its own stream.
  assert worker_seed(3, 1, 500) == worker_seed(3, 1, 500)
  assert all(0 <= s < 2**63 for s in seeds)
