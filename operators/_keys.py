"""One validator for the keys that name FIXER's runs and corrections."""

from __future__ import annotations

from ._samples import LabelErrorInputError

# Keys prefix field names, saved views and folder names: keep them short
MAX_KEY_LENGTH = 64


def key_problem(key: object, what: str = "Run key") -> str | None:
    """Why ``key`` cannot name a run (FiftyOne's field-name rules and a
    length limit), or None when it can."""
    if not isinstance(key, str) or not key.isidentifier():
        return f"{what} '{key}' must be a valid variable name"
    if not key.isascii():
        return f"{what} '{key}' must be ASCII"
    if key.startswith("_"):
        return (
            f"{what} '{key}' must not start with '_' (FiftyOne keeps such "
            "field names private)"
        )
    if len(key) > MAX_KEY_LENGTH:
        return (
            f"{what} '{key[:20]}...' is {len(key)} characters long; at most "
            f"{MAX_KEY_LENGTH} are allowed"
        )
    return None


def check_key(key: object, what: str = "Run key") -> None:
    """Raises LabelErrorInputError if ``key`` cannot name a run."""
    problem = key_problem(key, what)
    if problem:
        raise LabelErrorInputError(problem)
