"""Ray collect workers run the user's own code: the modules behind the gin
config are imported on every worker, or the run stops naming the module."""

import os
import shutil
import textwrap

import gin
import numpy as np
import pytest

from agents import train_eval as train_eval_lib
from agents.distributed_collection import DistributedCollector
from agents.distributed_collection import WorkerImportError
from playlist_sim.common import runs
from tests.agents.test_distributed_collection import _NETWORK, _learner
from tests.agents.test_train_eval import TINY_RUN, TINY_WORLD
from tests.conftest import REPO_ROOT

# Local Ray and TensorFlow workers: the integration tier.
pytestmark = pytest.mark.integration

_LISTENER = textwrap.dedent("""
    import gin
    import numpy as np
    import user_models


    @gin.configurable
    class {name}(user_models.AbstractUserModel):
      response_levels = ("skip", "not_skipped")

      def __init__(self, p_listen=0.5):
        self.p_listen = float(p_listen)

      def predict(self, context, track_ids):
        p = np.full(track_ids.shape, self.p_listen, np.float32)
        return np.stack([1.0 - p, p], axis=-1)
""")


def _user_module(folder, module: str, name: str) -> None:
  folder.mkdir(exist_ok=True)
  (folder / f"{module}.py").write_text(_LISTENER.format(name=name))


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()  # The user modules' bindings and imports go too.


def test_ray_workers_train_in_a_user_model_from_gin_imports(tmp_path):
  pytest.importorskip("ray")
  # The user's folder holds the module and a gin file (the command runs from
  # elsewhere: --gin_imports finds the module beside the gin file).
  _user_module(tmp_path / "code", "my_constant_listener", "ConstantListener")
  gin_file = tmp_path / "code" / "mine.gin"
  gin_file.write_text("train/EnvironmentBuilder.user_model = "
                      "@ConstantListener()\n"
                      "ConstantListener.p_listen = 0.7\n")
  runs.parse_gin([os.path.join(REPO_ROOT, "configs", "world.gin"),
                  str(gin_file)], TINY_WORLD,
                 gin_imports=["my_constant_listener"])
  metrics = train_eval_lib.train_eval(
      str(tmp_path / "run"), agent_name="ahdqn", num_iterations=2,
      collect_workers=1, **{**TINY_RUN, "baselines": ("random",)})
  assert metrics["global_step"] == 2 and np.isfinite(metrics["final_loss"])


def test_a_module_a_ray_worker_cannot_import_stops_the_run(tmp_path):
  pytest.importorskip("ray")
  _user_module(tmp_path / "gone", "my_vanishing_listener",
               "VanishingListener")
  (tmp_path / "here.gin").write_text("")  # Its folder is searched.
  runs.parse_gin(
      [os.path.join(REPO_ROOT, "configs", "simulate.gin"),
       str(tmp_path / "here.gin")],
      ["SyntheticWorld.num_tracks = 300", "SyntheticWorld.num_users = 60",
       "RandomEpisodeSampler.max_pool_size = 20",
       "EnvironmentBuilder.user_model = @VanishingListener()"],
      gin_imports=["gone.my_vanishing_listener"])
  agent = _learner()
  shutil.rmtree(tmp_path / "gone")  # The driver has it; a worker cannot.
  with DistributedCollector(num_workers=1, batch_size=2, seed=0,
                            env_scope="", network_kwargs=_NETWORK,
                            use_ray=True) as collector:
    with pytest.raises(WorkerImportError,
                       match="collect worker 0 could not import module "
                       "'gone.my_vanishing_listener'"):
      collector.collect(agent.policy, num_steps=2)
