"""The synthetic world and its user models give valid, seeded answers."""

import numpy as np
import pytest

import user_models
from playlist_sim.data.mssd_reference import load_mssd_reference


def _context(world, rows, history=4, seed=0):
  rng = np.random.default_rng(seed)
  hist = rng.integers(0, world.catalog.num_tracks, (rows, history))
  responses = rng.integers(-1, 4, (rows, history))
  return user_models.SessionContext(
      rows=np.arange(rows), user_ids=rng.integers(0, world.num_users, rows),
      user_features=world.user_features[:rows],
      position=rng.integers(0, 20, rows).astype(np.int32),
      history_ids=np.where(responses >= 0, hist, 0).astype(np.int32),
      history_responses=responses.astype(np.int32),
      consecutive_skips=rng.integers(0, 3, rows).astype(np.int32),
      num_skips=rng.integers(0, 6, rows).astype(np.int32))


def test_world_is_seeded_and_has_public_columns(small_world):
  again = user_models.SyntheticWorld(num_tracks=300, num_users=60, seed=1)
  np.testing.assert_array_equal(small_world.catalog.features,
                                again.catalog.features)
  assert set(user_models.TRACK_FEATURE_COLUMNS) == set(
      small_world.catalog.columns)
  with pytest.raises(ValueError, match="num_tracks"):
    user_models.SyntheticWorld(num_tracks=0)


@pytest.mark.parametrize("model_cls", [user_models.LogisticUserModel,
                                       user_models.ParametricListener])
@pytest.mark.parametrize("slate", [1, 3])
def test_probabilities_are_valid(small_world, model_cls, slate):
  model = model_cls(small_world)
  context = _context(small_world, 32)
  tracks = np.random.default_rng(1).integers(0, 300, (32, slate))
  probs = model.predict(context, tracks)
  assert probs.shape == (32, slate, len(model.response_levels))
  assert np.isfinite(probs).all() and (probs >= 0).all()
  np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_more_consecutive_skips_lower_the_listen_probability(small_world):
  listener = user_models.ParametricListener(small_world)
  context = _context(small_world, 16)
  tracks = np.arange(16)[:, None]
  calmer = user_models.SessionContext(**{
      **context.__dict__,
      "consecutive_skips": np.zeros(16, np.int32)})
  assert (listener.listen_probability(calmer, tracks) >=
          listener.listen_probability(context, tracks)).all()


def test_mssd_feature_style_has_the_real_quartiles():
  reference = load_mssd_reference()["track_features_all_tracks"]["columns"]
  simple = user_models.SyntheticWorld(num_tracks=2000, num_users=50, seed=3)
  mssd = user_models.SyntheticWorld(num_tracks=2000, num_users=50, seed=3,
                                    track_feature_style="mssd")
  # The style changes the public columns only: listeners, latent vectors and
  # the popularity order are the same draws.
  np.testing.assert_array_equal(simple.user_taste, mssd.user_taste)
  np.testing.assert_array_equal(simple.track_latent, mssd.track_latent)
  np.testing.assert_array_equal(simple.catalog.popularity,
                                mssd.catalog.popularity)
  for name, stats in reference.items():
    values = mssd.catalog.columns[name]
    if name == "mode":
      values = values == "major"
    quartiles = np.quantile(values.astype(float), [0.25, 0.5, 0.75])
    for q, value in zip(("q25", "q50", "q75"), quartiles):
      tol = max(0.1 * abs(stats[q]), 0.01 * (stats["max"] - stats["min"]))
      assert abs(value - stats[q]) <= tol, (name, q)
  with pytest.raises(ValueError, match="track_feature_style"):
    user_models.SyntheticWorld(num_tracks=10, track_feature_style="real")
