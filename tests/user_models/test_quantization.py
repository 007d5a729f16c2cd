"""quantize_user_model writes every variant and an honest report, and
LiteRTUserModel serves them in the environment."""

import json
import os
import pathlib

import gin
import numpy as np
import pytest
from tf_agents.environments import utils as env_utils

import simulator
import user_models
from user_models import training
from user_models.litert import LiteRTRunner
from user_models.litert_meta import record_sha256
from user_models.litert_user_model import LiteRTUserModel, META_FILE
from playlist_sim.data.leaving import leaving_model_beside
from playlist_sim.data.session_end import learned_session_end
from playlist_sim.data.sessions import LogSplit
from playlist_sim.data.sessions import consecutive_skip_limit_from_logs
from playlist_sim.evaluation.simulated import run_logged_episodes
from playlist_sim.jobs.quantization import quantize_user_model
from playlist_sim.policies.registry import make_policy
from user_models.keras_user_model import KerasUserModel


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, tiny_trained):
  """kind -> (folder, report); each kind is quantised when first asked for."""
  root = tmp_path_factory.mktemp("quantize")
  done = {}

  def get(kind):
    if kind not in done:
      gin.clear_config()
      qdir = str(root / f"q_{kind}")
      done[kind] = (qdir, quantize_user_model(
          tiny_trained[kind], tiny_trained["logs"], qdir,
          variants=("fp32", "int8", "int8_full"), eval_sessions=20,
          calibration_rows=200, return_episodes=16))
    return done[kind]
  return get


# The SWM serves as two parts, each converted per variant: the integration
# tier runs its LiteRT tests, and the fast tier converts the CWM only.
KINDS = ["cwm", pytest.param("swm", marks=pytest.mark.integration)]


@pytest.mark.parametrize("kind", KINDS)
def test_report_and_files(quantized, kind):
  qdir, report = quantized(kind)
  assert report["kind"] == kind
  fp32 = report["variants"]["fp32"]
  # The SWM's fp32 parts match Keras too, state carried over a whole
  # replay: without preserve_all_tensors XNNPack's GRU step went wrong
  # after the first invoke at a batch size (see LiteRTRunner).
  assert fp32["max_abs_err"] < 1e-4 and fp32["argmax_agreement"] == 1.0
  int8 = report["variants"]["int8"]
  assert int8["mean_abs_err"] < 0.1  # One epoch on tiny logs: a smoke test.
  for key in ("max_abs_err", "mean_abs_err", "argmax_agreement", "auc_delta",
              "file_bytes", "return_delta", "return_delta_se"):
    assert key in int8
  assert set(int8["return_delta"]) == {"random", "popularity", "greedy"}
  assert all(se >= 0 for se in int8["return_delta_se"].values())
  assert int8["file_bytes"] < fp32["file_bytes"]
  # The split the model trained on travels with it to the served file.
  meta = json.load(open(os.path.join(qdir, "user_model.meta.json")))
  assert meta["training_split"] == {"split_by": "session",
                                    "holdout_fraction": 0.2, "split_seed": 0}
  on_disk = json.load(open(os.path.join(qdir, "quantization_report.json")))
  assert on_disk["variants"].keys() == report["variants"].keys()
  assert os.path.isfile(os.path.join(qdir, "quantization_report.png"))
  if kind == "swm":
    assert os.path.isfile(os.path.join(qdir, "user_model.int8.step.tflite"))
    assert "skipped" in report["variants"]["int8_full"]
  else:
    assert report["variants"]["int8_full"]["file_bytes"] > 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_size", [1, 8])
def test_litert_user_model_in_the_environment(quantized, tiny_trained, kind,
                                              batch_size):
  qdir, _ = quantized(kind)
  tracks = tiny_trained["tracks"]
  model = LiteRTUserModel(os.path.join(qdir, "user_model.int8.tflite"),
                          tracks)
  env = simulator.EnvironmentBuilder(
      user_model=model, track_sampler=simulator.DiscreteTrackSampler(),
      episode_sampler=simulator.LogEpisodeSampler(
          tiny_trained["sessions"], tracks,
          max_pool_size=20)).get_py_env(batch_size=batch_size)
  env_utils.validate_py_environment(env, episodes=5)


def test_bad_litert_files(quantized, tiny_trained, tmp_path):
  qdir, _ = quantized("cwm")
  tracks = tiny_trained["tracks"]
  with pytest.raises(user_models.UserModelLoadError, match=META_FILE):
    LiteRTUserModel(str(tmp_path / "user_model.int8.tflite"), tracks)
  content = open(os.path.join(qdir, "user_model.int8.tflite"), "rb").read()
  (tmp_path / "user_model.int8.tflite").write_bytes(content[:300])
  (tmp_path / META_FILE).write_text(
      open(os.path.join(qdir, META_FILE)).read())
  with pytest.raises(user_models.UserModelLoadError):
    LiteRTUserModel(str(tmp_path / "user_model.int8.tflite"), tracks)
  # Another flatbuffer than the one the meta vouches for: the fp32 file.
  (tmp_path / "user_model.int8.tflite").write_bytes(
      pathlib.Path(qdir, "user_model.fp32.tflite").read_bytes())
  with pytest.raises(user_models.UserModelLoadError, match="sha256"):
    LiteRTUserModel(str(tmp_path / "user_model.int8.tflite"), tracks)


@pytest.mark.integration
def test_a_flatbuffer_of_other_widths_is_refused(quantized, tiny_trained,
                                                 tmp_path):
  # The SWM's file read as a CWM, with a meta that vouches for its bytes.
  cwm_dir, _ = quantized("cwm")
  swm_dir, _ = quantized("swm")
  target = tmp_path / "user_model.int8.tflite"
  target.write_bytes(
      pathlib.Path(swm_dir, "user_model.int8.tflite").read_bytes())
  meta = json.loads(pathlib.Path(cwm_dir, META_FILE).read_text())
  record_sha256(meta, target)
  (tmp_path / META_FILE).write_text(json.dumps(meta))
  with pytest.raises(user_models.UserModelLoadError, match="widths"):
    LiteRTUserModel(str(target), tiny_trained["tracks"])


@pytest.fixture(scope="module")
def user_split_cwm(tmp_path_factory, tiny_trained):
  """A CWM trained on the tiny logs split by user (one epoch)."""
  root = tmp_path_factory.mktemp("cwm_users")
  return training.train_user_model(str(root), tiny_trained["logs"],
                                   split_by="user", max_epochs=1,
                                   progress=False)


def _quantize_fp32(metrics, logs_dir, root_dir, **split):
  # Every held-out session is replayed, so eval_rows counts the split's
  # held-out rows.
  return quantize_user_model(metrics["model_path"], logs_dir, root_dir,
                             variants=("fp32",), eval_sessions=10**6,
                             calibration_rows=30, return_episodes=2,
                             policies=("random",), **split)


def test_quantisation_holds_out_what_the_model_held_out(
    user_split_cwm, tiny_trained, tmp_path):
  # No split given: the one the model recorded when it trained (by user),
  # not the default split by session.
  report = _quantize_fp32(user_split_cwm, tiny_trained["logs"],
                          str(tmp_path / "model_split"))
  assert report["eval_rows"] == user_split_cwm["num_held_out_rows"]
  assert report["split"] == {"split_by": "user", "holdout_fraction": 0.2,
                             "split_seed": 0}
  by_session = _quantize_fp32(user_split_cwm, tiny_trained["logs"],
                              str(tmp_path / "by_session"),
                              split_by="session")
  assert by_session["split"]["split_by"] == "session"
  assert by_session["eval_rows"] != report["eval_rows"]


def test_quantisation_refuses_an_unknown_split(user_split_cwm, tiny_trained,
                                               tmp_path):
  with pytest.raises(ValueError, match="split_by must be 'session' or 'user'"):
    _quantize_fp32(user_split_cwm, tiny_trained["logs"], str(tmp_path),
                   split_by="listener")


def test_simulated_returns_end_sessions_as_the_learned_simulator(
    tiny_trained, tmp_path):
  # The learned simulator of the agents and the evaluation ends sessions at
  # the logs' skip limit, with the leaving model beside the user model; the
  # report's returns must be of that simulator (not of N = 3, no leaving).
  model_path, logs_dir = tiny_trained["cwm"], tiny_trained["logs"]
  gin.clear_config()
  report = quantize_user_model(model_path, logs_dir, str(tmp_path / "q"),
                               variants=("fp32",), eval_sessions=10,
                               calibration_rows=30, return_episodes=24,
                               policies=("random",))
  limit = consecutive_skip_limit_from_logs(tiny_trained["sessions"])
  leaving = leaving_model_beside(model_path)
  assert leaving is not None  # train_user_model wrote one beside the model.
  assert report["consecutive_skip_limit"] == limit
  assert report["session_end"]["consecutive_skip_limit_source"] == "logs"
  assert report["session_end"]["leaving_model"] == leaving.to_json()
  on_disk = json.load(open(tmp_path / "q" / "quantization_report.json"))
  assert on_disk["consecutive_skip_limit"] == limit
  # The same episodes as the evaluation's simulator (same function, same
  # seed): the Keras return is that run's mean, to the last digit.
  end = learned_session_end(logs_dir, model_path)
  run = run_logged_episodes(
      KerasUserModel(model_path, tiny_trained["tracks"]), logs_dir,
      lambda env: make_policy("random", env, seed=0), 24, 0,
      leaving_model=end.leaving_model,
      log_split=LogSplit(**report["split"]),
      consecutive_skip_limit=end.consecutive_skip_limit)
  assert report["keras_returns"]["random"] == pytest.approx(
      float(np.mean(run.stats.returns)), abs=1e-12)
  # A limit given is used and recorded as given.
  given = quantize_user_model(model_path, logs_dir, str(tmp_path / "q1"),
                              variants=("fp32",), eval_sessions=10,
                              calibration_rows=30, return_episodes=24,
                              policies=("random",), consecutive_skip_limit=1)
  assert given["consecutive_skip_limit"] == 1
  assert given["session_end"]["consecutive_skip_limit_source"] == "given"
  with pytest.raises(ValueError, match="consecutive_skip_limit must be"):
    quantize_user_model(model_path, logs_dir, str(tmp_path / "q0"),
                        consecutive_skip_limit=0)


@pytest.mark.integration
def test_an_ensemble_quantises_and_serves_as_one_cwm(tiny_trained, tmp_path):
  metrics = training.train_user_model(
      str(tmp_path / "ens"), tiny_trained["logs"], ensemble_size=2,
      max_epochs=1, hidden_units=(16,), progress=False)
  report = quantize_user_model(
      metrics["model_path"], tiny_trained["logs"], str(tmp_path / "q"),
      variants=("fp32", "int8"), eval_sessions=20, calibration_rows=200,
      return_episodes=8)
  assert report["kind"] == "cwm"
  assert report["variants"]["fp32"]["max_abs_err"] < 1e-4
  assert report["variants"]["int8"]["mean_abs_err"] < 0.1
  served = LiteRTUserModel(os.path.join(str(tmp_path / "q"),
                                        "user_model.int8.tflite"),
                           tiny_trained["tracks"])
  assert served.user_vocab == metrics["user_vocab"]
  runner = LiteRTRunner(os.path.join(str(tmp_path / "q"),
                                     "user_model.fp32.tflite"))
  assert runner.embedding_rows() == metrics["user_vocab"]
