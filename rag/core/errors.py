"""The project's own exceptions. Each message names the bad value and the fix."""


class RagError(Exception):
    """Base class for every error the product reports to a user."""


class ConfigError(RagError):
    """A setting has an invalid value."""


class ModelMissingError(RagError):
    """A model the settings ask for has not been provisioned (or cannot be found)."""


class ModelVerificationError(RagError):
    """A provisioned model does not match its reference and must not be used."""


class IndexError_(RagError):
    """The index directory is missing, corrupt, stale or built with other settings."""


class InputError(RagError):
    """A question or an uploaded file was rejected."""


class LLMError(RagError):
    """The chat model could not be reached or failed while answering."""


class UsageError(RagError):
    """The command line was used wrongly (a missing or conflicting argument)."""
