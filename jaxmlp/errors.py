"""The one exception type the CLI turns into a one-line message and exit status 2.

Anything raised as a `UserError` is the user's to fix (bad file, bad option,
missing dataset); its message names the problem and the fix. Everything else
is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, reported without a traceback."""


class DataError(UserError):
    """A dataset that cannot be read or had."""


class ConfigError(UserError):
    """An invalid option, recipe or run directory."""
