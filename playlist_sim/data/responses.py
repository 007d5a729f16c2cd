"""The names of a listener's response levels, shared by logs and user models.

A user model names its levels (`AbstractUserModel.response_levels`); the logs
store the public dataset's five outcomes. The two tuples live here, below
both, so reading logs needs no user-model (TensorFlow) code;
`user_models.base` re-exports them. Their meaning is in `user_models.base`.
"""

__all__ = ["BINARY_RESPONSE_LEVELS", "PUBLIC_RESPONSE_LEVELS"]

BINARY_RESPONSE_LEVELS = ("skip", "not_skipped")
PUBLIC_RESPONSE_LEVELS = ("skip_1", "skip_2", "skip_3", "ended_otherwise",
                          "not_skipped")
