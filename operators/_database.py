"""Fails fast, naming the database, when FiftyOne's MongoDB goes away
during a run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import fiftyone as fo
import fiftyone.core.odm as foo_odm
import pymongo
import pymongo.errors
import pymongo.uri_parser

from ._samples import LabelErrorInputError

PING_SECONDS = 3.0


class DatabaseUnavailableError(LabelErrorInputError):
    """Raised when FiftyOne's database stops answering."""


def database_name() -> str:
    """``'<name>' at <host:port>`` of FiftyOne's database (no
    credentials)."""
    where = "the database FiftyOne started itself"
    if fo.config.database_uri:
        with contextlib.suppress(Exception):
            nodes = pymongo.uri_parser.parse_uri(fo.config.database_uri)
            where = ", ".join(f"{h}:{p}" for h, p in nodes["nodelist"])
    return f"'{fo.config.database_name}' at {where}"


def check_database() -> None:
    """Pings the database, waiting at most :data:`PING_SECONDS`."""
    try:
        with pymongo.timeout(PING_SECONDS):
            foo_odm.get_db_conn().command("ping")
    except pymongo.errors.PyMongoError as e:
        raise _unavailable(e) from e


@contextlib.contextmanager
def naming_database() -> Iterator[None]:
    """Turns a lost connection inside the block into an error naming the
    database."""
    try:
        yield
    except (
        pymongo.errors.ConnectionFailure,
        pymongo.errors.ServerSelectionTimeoutError,
    ) as e:
        raise _unavailable(e) from e


def _unavailable(error: Exception) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(
        f"FiftyOne's database {database_name()} does not answer "
        f"({type(error).__name__}); the run stopped. Check that MongoDB is "
        "running, then run it again"
    )
