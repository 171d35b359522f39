"""Locks held in FiftyOne's database, so that FIXER's work in different
processes (or machines) sharing a dataset never overlaps.

Each lock is one document of the ``fixer_locks`` collection, keyed by
dataset id and resource (``run:<key>``, ``labels:<field>``, ``schema``).
It has one exclusive holder (``writer``) or any number of shared holders
(``readers``). A holder names its operation, host and process, and renews
its lease while it works; a holder whose lease ran out, or whose process
on this host is gone (``kill -9``), is cleared by the next taker.

Resources:
    ``run:<key>``: a finder run, an apply or undo, a delete of that key.
    ``labels:<field>``: a ground-truth field. Apply and undo hold it
    exclusively; finder runs hold it shared, so they read one version of
    the labels from start to end.
    ``schema``: the dataset document (fields, runs, saved views), held for
    the moment of each change, after reloading it, so that concurrent
    changes never overwrite each other.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import fiftyone.core.odm as foo_odm
import pymongo
import pymongo.errors

from ._samples import LabelErrorInputError

COLLECTION = "fixer_locks"
LEASE_SECONDS = 60.0
SCHEMA_WAIT_SECONDS = 60.0
RELEASE_SECONDS = 3.0


_schema_depth = threading.local()


class BusyError(LabelErrorInputError):
    """Raised when another operation holds a lock."""


def run_resource(run_key: str) -> str:
    """The lock resource of a run (finder run or apply) key."""
    return f"run:{run_key}"


def labels_resource(gt_field: str) -> str:
    """The lock resource of a ground-truth field."""
    return f"labels:{gt_field}"


@contextlib.contextmanager
def exclusive(
    dataset, resource: str, operation: str, *, wait: float = 0.0
) -> Iterator[None]:
    """Holds ``resource`` of ``dataset`` alone; raises :class:`BusyError`
    naming the holder if it is still taken after ``wait`` seconds."""
    with _held(dataset, resource, operation, shared=False, wait=wait):
        yield


@contextlib.contextmanager
def shared(
    dataset, resource: str, operation: str, *, wait: float = 1.0
) -> Iterator[None]:
    """Holds ``resource`` of ``dataset`` together with other shared
    holders; raises :class:`BusyError` if it is still held exclusively
    after ``wait`` seconds (the default rides out two shared holders
    creating the lock at the same moment)."""
    with _held(dataset, resource, operation, shared=True, wait=wait):
        yield


@contextlib.contextmanager
def schema_change(dataset) -> Iterator[None]:
    """Changes the dataset document safely: waits for other changes,
    reloads the dataset (fields, runs, saved views) and holds the schema
    lock while the caller changes it. Nested calls hold it once."""
    if getattr(_schema_depth, "value", 0):
        _schema_depth.value += 1
        try:
            yield
        finally:
            _schema_depth.value -= 1
        return
    with exclusive(
        dataset, "schema", "a schema change", wait=SCHEMA_WAIT_SECONDS
    ):
        dataset.reload()
        _schema_depth.value = 1
        try:
            yield
        finally:
            _schema_depth.value = 0


def holders(dataset, resource: str) -> list[dict]:
    """The current holders of a lock (for messages and tests)."""
    doc = _collection().find_one({"_id": _lock_id(dataset, resource)})
    if doc is None:
        return []
    return ([doc["writer"]] if doc.get("writer") else []) + list(
        doc.get("readers") or []
    )


# -- mechanics ---------------------------------------------------------------


def _collection():
    return foo_odm.get_db_conn()[COLLECTION]


def _lock_id(dataset, resource: str) -> str:
    return f"{dataset._doc.id}/{resource}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


@contextlib.contextmanager
def _held(dataset, resource, operation, *, shared, wait) -> Iterator[None]:
    lock_id = _lock_id(dataset, resource)
    holder = {
        "token": uuid.uuid4().hex,
        "operation": operation,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": _now(),
        "expires": _now() + datetime.timedelta(seconds=LEASE_SECONDS),
    }
    deadline = time.monotonic() + wait
    while not _try_take(lock_id, holder, shared):
        if time.monotonic() >= deadline:
            raise BusyError(_busy_message(dataset, resource, lock_id))
        time.sleep(0.1)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew,
        args=(lock_id, holder["token"], shared, stop),
        name="fixer-lock-lease",
        daemon=True,
    )
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        _release(lock_id, holder["token"], shared)


def _try_take(lock_id: str, holder: dict, shared: bool) -> bool:
    collection = _collection()
    _clear_stale(collection, lock_id)
    if shared:
        query = {"_id": lock_id, "writer": None}
        update = {"$push": {"readers": holder}}
    else:
        query = {"_id": lock_id, "writer": None, "readers": []}
        update = {"$set": {"writer": holder}}
    try:
        collection.update_one(query, update, upsert=True)
    except pymongo.errors.DuplicateKeyError:
        return False  # the lock exists and did not match: taken
    return True


def _clear_stale(collection, lock_id: str) -> None:
    doc = collection.find_one({"_id": lock_id})
    if doc is None:
        return
    writer = doc.get("writer")
    if writer and _is_stale(writer):
        collection.update_one(
            {"_id": lock_id, "writer.token": writer["token"]},
            {"$set": {"writer": None}},
        )
    for reader in doc.get("readers") or []:
        if _is_stale(reader):
            collection.update_one(
                {"_id": lock_id},
                {"$pull": {"readers": {"token": reader["token"]}}},
            )


def _is_stale(holder: dict) -> bool:
    if holder["expires"].replace(tzinfo=None) < _now():
        return True
    if holder["host"] != socket.gethostname():
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _renew(lock_id: str, token: str, shared: bool, stop) -> None:
    path = "readers.$.expires" if shared else "writer.expires"
    match = "readers.token" if shared else "writer.token"
    while not stop.wait(LEASE_SECONDS / 4):
        expires = _now() + datetime.timedelta(seconds=LEASE_SECONDS)
        with (
            contextlib.suppress(pymongo.errors.PyMongoError),
            pymongo.timeout(RELEASE_SECONDS),
        ):
            _collection().update_one(
                {"_id": lock_id, match: token}, {"$set": {path: expires}}
            )


def _release(lock_id: str, token: str, shared: bool) -> None:
    """Releases a lock; gives up after a few seconds when the database is
    gone (the lease then runs out by itself)."""
    with (
        contextlib.suppress(pymongo.errors.PyMongoError),
        pymongo.timeout(RELEASE_SECONDS),
    ):
        _release_now(lock_id, token, shared)


def _release_now(lock_id: str, token: str, shared: bool) -> None:
    collection = _collection()
    if shared:
        collection.update_one(
            {"_id": lock_id}, {"$pull": {"readers": {"token": token}}}
        )
    else:
        collection.update_one(
            {"_id": lock_id, "writer.token": token},
            {"$set": {"writer": None}},
        )
    collection.delete_one({"_id": lock_id, "writer": None, "readers": []})


def _busy_message(dataset, resource: str, lock_id: str) -> str:
    doc = _collection().find_one({"_id": lock_id}) or {}
    held = [doc["writer"]] if doc.get("writer") else doc.get("readers") or []
    who = "; ".join(
        f"{h['operation']} (process {h['pid']} on {h['host']}, since "
        f"{h['since']:%Y-%m-%d %H:%M:%S} UTC)"
        for h in held
    )
    return (
        f"Dataset '{dataset.name}' is busy: {resource} is held by "
        f"{who or 'another operation'}; try again when it has finished"
    )
