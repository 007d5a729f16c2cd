"""The learned simulator's session end: one builder, its inputs checked.

(The limit estimated from real logs is checked in
tests/user_models/test_quantization.py, which has tiny logs at hand.)"""

import pytest

from playlist_sim.data import leaving
from playlist_sim.data.session_end import learned_session_end


def test_given_limit_and_the_leaving_model_beside_the_user_model(tmp_path):
  model_path = str(tmp_path / "user_model.int8.tflite")
  end = learned_session_end(str(tmp_path / "no_logs"), model_path, 4)
  assert (end.consecutive_skip_limit, end.skip_limit_source) == (4, "given")
  assert end.leaving_model is None and end.leaving_model_path is None
  model = leaving.LeavingModel((-2.0, 0.1, -0.05), (0.1, 0.01, 0.01), 10,
                               19, 8, 1000, 50)
  path = model.save(str(tmp_path / leaving.LEAVING_MODEL_FILE))
  end = learned_session_end(str(tmp_path / "no_logs"), model_path, 4)
  assert end.leaving_model == model and end.leaving_model_path == path
  assert end.to_json() == {"consecutive_skip_limit": 4,
                           "consecutive_skip_limit_source": "given",
                           "leaving_model": model.to_json(),
                           "leaving_model_path": path}
  # leaving_model=False: the limit alone.
  assert learned_session_end(str(tmp_path), model_path, 4,
                             leaving_model=False).leaving_model is None


@pytest.mark.parametrize("limit", [0, -1, 2.5, True, "3"])
def test_a_bad_limit_is_refused_naming_it(tmp_path, limit):
  with pytest.raises(ValueError, match="consecutive_skip_limit must be an "
                     "integer >= 1"):
    learned_session_end(str(tmp_path), str(tmp_path / "m.keras"), limit)


def test_no_limit_needs_the_logs(tmp_path):
  with pytest.raises(FileNotFoundError):
    learned_session_end(str(tmp_path / "missing"), str(tmp_path / "m.keras"))
