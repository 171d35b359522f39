"""Which model entry points an operator may call: only those an
administrator allowed, or those a Python caller passed itself.

A model or architecture ``package.module:factory`` is imported and called
in the process that runs the operator. From the App that is the server, so
a typed-in entry point would let any App user call any Python callable
(``os:abort``). Entry points are therefore refused unless

- the ``FIXER_ALLOWED_ENTRY_POINTS`` plugin secret (an environment variable
  of the server, comma-separated) lists them,
- the global App config lists them under
  ``plugins["@fixer/fixer"]["allowed_entry_points"]``,
- an installed package registers them in the ``fixer.models`` entry-point
  group, or
- this process's own Python code passed them to the operator's
  ``__call__`` (the caller's own code).

TorchScript files load no Python code and are always allowed.
"""

from __future__ import annotations

import importlib.metadata
import os

import fiftyone as fo

from ..fixer_core.models import _looks_like_path
from ._samples import LabelErrorInputError

ALLOW_SECRET = "FIXER_ALLOWED_ENTRY_POINTS"
ENTRY_POINT_GROUP = "fixer.models"
PLUGIN_NAME = "@fixer/fixer"
SETTING = "allowed_entry_points"

# Entry points this process's Python code passed to an operator itself
_from_python: set[str] = set()


def is_entry_point(spec: str) -> bool:
    """Whether the finder would import ``spec`` as an entry point rather
    than load it as a TorchScript file (``fixer_core.models.load_model``'s
    own rule)."""
    spec = spec.strip()
    return not _looks_like_path(spec, os.path.expanduser(spec))


def trust_from_python(*specs: str | None) -> None:
    """Records entry points a Python caller passed to an operator: they
    are its own code, so this process may call them."""
    _from_python.update(s.strip() for s in specs if s and is_entry_point(s))


def allowed_entry_points(ctx) -> list[str]:
    """The entry points an administrator allowed, sorted."""
    allowed = set(_split(ctx.secret(ALLOW_SECRET)))
    settings = (fo.app_config.plugins or {}).get(PLUGIN_NAME) or {}
    allowed.update(_split(settings.get(SETTING)))
    allowed.update(
        ep.value.strip()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    )
    return sorted(allowed)


def may_call(ctx, spec: str | None) -> bool:
    """Whether ``spec`` is empty, a TorchScript file, or an entry point
    that was allowed or passed by this process's Python code."""
    if not spec or not is_entry_point(spec):
        return True
    spec = spec.strip()
    return spec in _from_python or spec in allowed_entry_points(ctx)


def check_entry_point(ctx, spec: str | None, what: str) -> None:
    """Refuses ``spec`` (a model or architecture), before anything is
    imported, if it is an entry point nobody allowed."""
    if may_call(ctx, spec):
        return
    spec = spec.strip()
    raise LabelErrorInputError(
        f"{what} '{spec}' is an entry point that the administrator has not "
        f"allowed; allowed: {allowed_entry_points(ctx) or 'none'}. List it "
        f"in the {ALLOW_SECRET} secret or register it in the "
        f"'{ENTRY_POINT_GROUP}' entry-point group (see docs/safety.md)"
    )


def _split(value) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]
