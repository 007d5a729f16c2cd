"""evaluate_policies takes its split as an argument, checked first."""

import pytest

from playlist_sim.evaluation.evaluate import evaluate_policies


@pytest.mark.parametrize("kwargs, match", [
    ({"split_by": "users"}, "split_by must be 'session' or 'user'"),
    ({"split_by": "user", "holdout_fraction": 1.5}, "holdout_fraction"),
])
def test_a_bad_split_is_refused_before_anything_is_read(tmp_path, kwargs,
                                                        match):
  with pytest.raises(ValueError, match=match):
    evaluate_policies(str(tmp_path / "out"), str(tmp_path / "no_logs"),
                      str(tmp_path / "no_model.tflite"), **kwargs)
  assert not (tmp_path / "out").exists()
