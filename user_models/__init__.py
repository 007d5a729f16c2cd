"""User models: what the simulated listener does with a recommended track."""

from user_models import _keras2  # noqa: F401  (must run before TensorFlow)
from user_models.base import AbstractUserModel
from user_models.base import BINARY_RESPONSE_LEVELS
from user_models.base import PUBLIC_RESPONSE_LEVELS
from user_models.base import SessionContext
from user_models.base import UserModelError
from user_models.base import UserModelLoadError
from playlist_sim.data.catalog import NUMERIC_TRACK_COLUMNS
from playlist_sim.data.catalog import TRACK_FEATURE_COLUMNS
from playlist_sim.data.catalog import TrackCatalog
from playlist_sim.data.catalog import UnknownColumnError
from playlist_sim.data.catalog import UnknownTrackError
from user_models.keras_user_model import KerasUserModel
from user_models.keras_user_model import load_user_model
from user_models.keras_user_model import save_user_model
from user_models.listener import ParametricListener
from user_models.litert_user_model import LiteRTUserModel
from user_models.logistic import LogisticUserModel
from user_models.model_files import check_keras_archive
from playlist_sim.data.world import SyntheticWorld
from playlist_sim.data.world import world_catalog

__all__ = [
    "AbstractUserModel",
    "BINARY_RESPONSE_LEVELS",
    "KerasUserModel",
    "LiteRTUserModel",
    "LogisticUserModel",
    "NUMERIC_TRACK_COLUMNS",
    "ParametricListener",
    "PUBLIC_RESPONSE_LEVELS",
    "SessionContext",
    "SyntheticWorld",
    "TRACK_FEATURE_COLUMNS",
    "TrackCatalog",
    "UnknownColumnError",
    "UnknownTrackError",
    "UserModelError",
    "UserModelLoadError",
    "check_keras_archive",
    "load_user_model",
    "save_user_model",
    "world_catalog",
]
