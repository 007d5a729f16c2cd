"""The driver's user modules travel to other processes: found from the gin
config, imported there from the driver's folders, or a clear error."""

import pickle
import subprocess
import sys
import textwrap

import gin
import pytest

from playlist_sim.common import runs
from playlist_sim.common.user_modules import ModuleSet, WorkerImportError
from tests.conftest import REPO_ROOT

_MODULE = textwrap.dedent("""
    import gin

    @gin.configurable
    def {name}(value=1):
      return value
""")


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _user_module(folder, name: str) -> None:
  folder.mkdir(exist_ok=True)
  (folder / f"{name}.py").write_text(_MODULE.format(name=f"{name}_value"))


def test_gin_imports_and_configured_modules_are_found_with_their_folders(
    tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # import_modules puts the cwd on sys.path.
  _user_module(tmp_path / "mine", "um_flagged")
  _user_module(tmp_path / "mine", "um_bound")
  runs.import_modules(["um_flagged"], [str(tmp_path / "mine")])
  runs.import_modules(["um_bound"], [str(tmp_path / "mine")])
  gin.parse_config("um_bound_value.value = 3")
  modules = ModuleSet.of_gin_config()
  # Both --gin_imports modules are `import` lines of the config now.
  assert modules.names[:2] == ("um_bound", "um_flagged")
  assert "import um_flagged" in gin.config_str()
  assert str(tmp_path / "mine") in modules.folders
  # A fresh process (as a Ray worker is: the packages on its path, not the
  # user's folder) imports them from those folders and then parses the
  # driver's config.
  code = ("import pickle, sys, gin; m = pickle.loads(sys.stdin.buffer.read());"
          " m.import_all('worker 0'); gin.parse_config('um_bound_value.value "
          "= 3'); import um_bound; print(um_bound.um_bound_value())")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT,
                       input=pickle.dumps(modules), capture_output=True,
                       timeout=120)
  assert out.returncode == 0, out.stderr.decode()[-2000:]
  assert out.stdout.decode().strip() == "3"


def test_a_module_a_worker_cannot_import_is_named(tmp_path):
  modules = ModuleSet(("no_such_user_module_xyz",), (str(tmp_path),))
  with pytest.raises(WorkerImportError) as error:
    modules.import_all("collect worker 3")
  message = str(error.value)
  assert "collect worker 3 could not import module 'no_such_user_module_xyz'"\
      in message
  assert str(tmp_path) in message and "runtime_env" in message


def test_a_configurable_of_the_running_script_is_refused(monkeypatch):
  main_module = type(sys)("__main__")
  exec(_MODULE.format(name="script_value"), main_module.__dict__)  # pylint: disable=exec-used
  gin.parse_config("script_value.value = 2")
  with pytest.raises(WorkerImportError, match=r"'script_value' is defined in "
                     r"the script being run \(__main__\)"):
    ModuleSet.of_gin_config()


def test_the_modules_go_with_the_gin_config(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  _user_module(tmp_path, "um_cleared")
  runs.import_modules(["um_cleared"])
  assert "um_cleared" in ModuleSet.of_gin_config().names
  gin.clear_config()  # The next command in this process starts clean.
  assert "um_cleared" not in ModuleSet.of_gin_config().names
