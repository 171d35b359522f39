"""Data-parallel runs over several processes (ranks) with
``torch.distributed``: ``gloo`` on CPUs, ``nccl`` with one GPU per rank.

A run is split over ranks either by ``torchrun`` (every rank runs the
operator; the ranks are read from ``RANK``/``WORLD_SIZE``), or by the
operator's ``workers`` parameter: the executing process becomes rank 0 and
starts the others (see :func:`started_workers`). Each rank reads a
contiguous shard of the target samples; see ``_find_label_errors`` for
what is reduced where.

Every stage ends with all ranks agreeing that none failed
(:meth:`Ranks.stage`): a failure on one rank stops every rank with the
failing rank's message, so the run stops as an interrupted single-process
run would.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import fiftyone as fo
import fiftyone.core.odm.database as food
import torch
import torch.distributed as dist

from ..fixer_core.threads import limited_threads, passive_waits, rank_threads
from ._samples import LabelErrorInputError

logger = logging.getLogger(__name__)

# How long a rank waits for the others at a collective: a rank that stops
# answering without failing (a stuck file system) fails the run after this.
TIMEOUT = datetime.timedelta(minutes=30)
# How long rank 0 waits for the processes it started to exit after the run
EXIT_SECONDS = 60.0
# Set in started workers' environment: they report to rank 0's store
_STARTED = "FIXER_STARTED_WORKER"
_READY = "fixer/ready"  # the store's count of started workers ready


class RankFailedError(LabelErrorInputError):
    """Raised on every rank of a run when another rank failed."""


@dataclass
class Ranks:
    """This process's place in a run: rank ``rank`` of ``world_size``
    (``local_ranks`` of them on this machine). The default is a
    single-process run, whose collectives do nothing."""

    rank: int = 0
    world_size: int = 1
    local_ranks: int = 1

    @property
    def is_lead(self) -> bool:
        """Whether this rank writes the run record, views and summary."""
        return self.rank == 0

    def shard(self, num_samples: int) -> tuple[int, int]:
        """``(start, stop)`` of this rank's contiguous share of the
        samples, in the target's order."""
        start = num_samples * self.rank // self.world_size
        stop = num_samples * (self.rank + 1) // self.world_size
        return start, stop

    def all_reduce(self, tensor: torch.Tensor) -> None:
        """Sums ``tensor`` over the ranks, in place."""
        if self.world_size > 1:
            with _answering(self.world_size):
                dist.all_reduce(tensor)

    def gather(self, value: object) -> list:
        """Every rank's ``value`` (picklable), in rank order."""
        if self.world_size == 1:
            return [value]
        values: list = [None] * self.world_size
        with _answering(self.world_size):
            dist.all_gather_object(values, value)
        return values

    def from_lead(self, value: object) -> object:
        """Rank 0's ``value``, on every rank."""
        if self.world_size == 1:
            return value
        box = [value]
        with _answering(self.world_size):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    @contextlib.contextmanager
    def stage(self) -> Iterator[None]:
        """Ends a stage with every rank agreeing that none failed: a
        rank that failed raises its own error, the others a
        :class:`RankFailedError` naming the failing rank and its
        error."""
        try:
            yield
        except Exception as e:
            self._agree(e)
            raise
        self._agree(None)

    def _agree(self, error: Exception | None) -> None:
        if self.world_size == 1:
            return
        failures = self.gather(None if error is None else _message(error))
        failed = [(r, m) for r, m in enumerate(failures) if m is not None]
        if failed and error is None:
            rank, message = failed[0]
            raise RankFailedError(
                f"Rank {rank} of {self.world_size} failed, so the run "
                f"stopped: {message}"
            )


@contextlib.contextmanager
def _answering(world_size: int) -> Iterator[None]:
    """Turns a collective that fails because a rank is gone (killed,
    crashed, unreachable) into a :class:`RankFailedError`."""
    try:
        yield
    except RuntimeError as e:  # torch's DistBackendError and kin
        raise RankFailedError(
            f"A rank of the {world_size} stopped answering (killed, crashed "
            f"or unreachable), so the run stopped: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}"
        ) from e


def _message(error: Exception) -> str:
    if isinstance(error, LabelErrorInputError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def backend() -> str:
    """``nccl`` where there are GPUs, else ``gloo``."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "nccl"
    return "gloo"


@contextlib.contextmanager
def ranks_from_env() -> Iterator[Ranks]:
    """The ranks that ``torchrun`` (or :func:`started_workers`) set in the
    environment: joins their process group for the block (a
    single-process run without them)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield Ranks()
        return
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    owned = not dist.is_initialized()
    if owned:
        name = backend()
        if name == "nccl":
            # one GPU per rank: "cuda" is this rank's GPU from here on
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        if os.environ.get(_STARTED) == "1":
            dist.init_process_group(
                name,
                store=_report_ready(world_size),
                rank=int(os.environ["RANK"]),
                world_size=world_size,
                timeout=TIMEOUT,
            )
        else:
            dist.init_process_group(name, timeout=TIMEOUT)
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), local_ranks)
    finally:
        if owned:
            dist.destroy_process_group()


def _report_ready(world_size: int) -> dist.Store:
    """A started worker's connection to rank 0's store, once it has told
    rank 0 that it is ready."""
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world_size,
        is_master=False,
        timeout=TIMEOUT,
    )
    store.add(_READY, 1)
    return store


def run_ranks(
    view, params: dict, workers: int
) -> contextlib.AbstractContextManager[Ranks]:
    """The ranks of a run of the operator's ``params``: ``workers``
    started processes (:func:`started_workers`) when more than one, else
    those set by ``torchrun`` (:func:`ranks_from_env`), if any."""
    if workers > 1:
        return started_workers(view, params, workers)
    return ranks_from_env()


# Run by each started worker that is a new interpreter: loads the plugin
# package from its folder as FiftyOne does, under rank 0's name for it (the
# ranks exchange pickled objects of its classes), and runs its rank.
_WORKER = """
import importlib, importlib.util, json, sys
spec = importlib.util.spec_from_file_location(
    sys.argv[3], sys.argv[1] + "/__init__.py",
    submodule_search_locations=[sys.argv[1]])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
with open(sys.argv[2]) as f:
    request = json.load(f)
importlib.import_module(spec.name + ".operators._distributed").work(request)
"""


@contextlib.contextmanager
def started_workers(view, params: dict, workers: int) -> Iterator[Ranks]:
    """Starts ranks 1 .. ``workers - 1`` of a run of the operator's
    ``params`` on ``view`` as processes of this machine (forked where
    :func:`forks` allows, else new interpreters); this process is rank 0
    for the block. They report to rank 0's store when they are ready; one
    that exits before fails the run at once. A rank that fails stops the
    others (see :meth:`Ranks.stage`); the processes are waited for (or
    killed) on exit."""
    store = dist.TCPStore(
        "127.0.0.1",
        0,  # a free port
        workers,
        is_master=True,
        timeout=TIMEOUT,
        wait_for_workers=False,
    )
    request = {
        "dataset": view._dataset.name,
        "view": view._serialize() if isinstance(view, fo.DatasetView) else [],
        "params": {**params, "workers": 1},
    }
    settings = dict(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(store.port),
        WORLD_SIZE=str(workers),
        LOCAL_WORLD_SIZE=str(workers),
        FIFTYONE_DATABASE_NAME=fo.config.database_name,
        **{_STARTED: "1"},
    )
    if fo.config.database_uri:
        settings["FIFTYONE_DATABASE_URI"] = fo.config.database_uri
    ranks = [
        dict(settings, RANK=str(r), LOCAL_RANK=str(r))
        for r in range(1, workers)
    ]
    with contextlib.ExitStack() as stack:
        if forks(params, workers):
            # rank 0 runs on one thread too; OpenCV's pool must have no
            # threads when it forks (see forks)
            stack.enter_context(limited_threads(1))
            procs = [_Forked(request, rank) for rank in ranks]
        else:
            tmp = tempfile.TemporaryDirectory(prefix="fixer-ranks-")
            procs = _interpreters(request, ranks, stack.enter_context(tmp))
        try:
            name = backend()
            if name == "nccl":
                torch.cuda.set_device(0)
            _wait_until_ready(store, procs)
            dist.init_process_group(
                name, store=store, rank=0, world_size=workers, timeout=TIMEOUT
            )
            try:
                yield Ranks(0, workers, workers)
            finally:
                dist.destroy_process_group()
        finally:
            if not dist.is_initialized():  # stopped before they joined
                for proc in procs:
                    proc.kill()
            _wait(procs)


def forks(params: dict, workers: int) -> bool:
    """Whether the started workers are forked from this process, which has
    torch and FiftyOne loaded (a new interpreter takes 5-6 s to import
    them here, a quarter of a 2-rank run of 468 images), as FiftyOne's
    ``map_samples`` forks its workers. Only on Linux, without GPUs (a
    forked process cannot use CUDA), and with one thread per rank: a forked
    process hangs at its first parallel OpenMP region after its parent ran
    one (GNU OpenMP, as torch's wheels use), and at its first change of
    OpenCV's threads while the parent's pool had idle threads (measured
    with torch 2 and OpenCV 4). Not from a daemonic ``multiprocessing``
    process either, which may not have children."""
    from ._params import find_params

    threads = find_params(params).num_threads
    return (
        sys.platform == "linux"
        and not torch.cuda.is_available()
        and not multiprocessing.current_process().daemon
        and rank_threads(threads, workers) == 1
    )


class _Forked:
    """A worker forked from this process, with the part of
    :class:`subprocess.Popen` that rank 0 uses."""

    def __init__(self, request: dict, environ: dict[str, str]):
        context = multiprocessing.get_context("fork")
        self._process = context.Process(
            target=_work_forked, args=(request, environ)
        )
        self._process.start()
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(f"rank pid {self.pid}", timeout)
        return self._process.exitcode

    def kill(self) -> None:
        self._process.kill()


def _work_forked(request: dict, environ: dict[str, str]) -> None:
    _enter_fork(environ)
    work(request)


def _enter_fork(environ: dict[str, str]) -> None:
    """Makes a forked worker its own process."""
    # The parent's garbage came along (an operator's finished asyncio
    # task, its traceback's frames holding a destroyed gloo process group,
    # say): freed here, the group's destructor waits on threads that were
    # not forked, and the rank hangs or aborts. Never collect it here.
    gc.freeze()
    os.environ.update(environ)
    # its own MongoDB client, as map_samples' workers: pymongo's clients
    # must not cross a fork
    food._disconnect()


def _interpreters(
    request: dict, ranks: list[dict[str, str]], tmp: str
) -> list[subprocess.Popen]:
    """Workers started as new Python interpreters (:data:`_WORKER`)."""
    plugin_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    package = __name__.rsplit(".operators.", 1)[0]
    path = os.path.join(tmp, "request.json")
    with open(path, "w") as f:
        json.dump(request, f)
    procs = []
    for settings in ranks:
        env = dict(os.environ, **settings)
        passive_waits(env)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, plugin_dir, path, package],
                env=env,
            )
        )
    return procs


def _wait_until_ready(store: dist.Store, procs: list) -> None:
    """Waits for the started workers to report ready; one that exits
    before (it could not start) fails the run at once."""
    while int(store.add(_READY, 0)) < len(procs):
        for rank, proc in enumerate(procs, 1):
            if proc.poll() is not None:
                raise RankFailedError(
                    f"Rank {rank} of {len(procs) + 1} exited (status "
                    f"{proc.returncode}) before it started, so the run "
                    "stopped; its error is in its log (stderr)"
                )
        time.sleep(0.05)


def _wait(procs: list) -> None:
    for proc in procs:
        try:
            proc.wait(timeout=EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning(
                "Rank process %d did not exit; killing it", proc.pid
            )
            proc.kill()
            proc.wait()


def work(request: dict) -> None:
    """One started worker's rank of a run (see :func:`started_workers`)."""
    from ._params import find_params
    from ._pipeline import run_find_label_errors

    dataset = fo.load_dataset(request["dataset"], reload=True)
    view = (
        fo.DatasetView._build(dataset, request["view"])
        if request["view"]
        else dataset
    )
    params = find_params(request["params"])
    status = 0
    try:
        with ranks_from_env() as ranks:
            for _ in run_find_label_errors(view, params, ranks):
                pass
    except Exception as e:
        # rank 0 reports the run's failure; this is the rank's own log
        print(f"FIXER rank failed: {_message(e)}", file=sys.stderr)
        status = 1
    _exit_now(status)


def _exit_now(status: int) -> None:
    """Ends a started worker without the interpreter's teardown, which
    took seconds that rank 0 spent waiting (its writes are acknowledged
    and its files closed by now), as ``multiprocessing``'s children end."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
