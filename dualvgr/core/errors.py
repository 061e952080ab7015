"""Exception types shared by every stage.

Each carries a message written for the user: what was wrong (the value), what was expected, and the fix.
"""


class HarnessError(Exception):
    """Base class: an error the user can act on (printed without a traceback by the CLI)."""


class SpecError(HarnessError):
    """The experiment file or an override is invalid."""


class DataError(HarnessError):
    """An input file (annotations, videos, features, vocabulary) is missing or malformed."""


class StageError(HarnessError):
    """A stage cannot run (missing upstream output, incompatible inputs)."""
