"""The real CVAT v2.23.1 server of ``../shared/cvat`` for the live tests.

:func:`start` makes sure a server runs under ``CVAT_ROOT`` (default
``/tmp/cvat``): a server that already answers (``.ci/run`` starts one) is
used as is; otherwise ``setup_cvat.sh`` installs what is missing and starts
it. It never raises: without a server it returns the reason, for the tests
to skip with. A non-empty ``FIXER_TEST_CVAT_SKIP`` turns the live tests
off, its text being the reason (``.ci/run`` sets it when the setup fails).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

SHARED_CVAT = Path(__file__).resolve().parents[2] / "shared" / "cvat"
# A cold install compiles lxml and xmlsec (about 7 minutes on 2 cores)
SETUP_TIMEOUT = 1800
RESTART_TIMEOUT = 300


@dataclass
class CvatServer:
    """A running CVAT server and how to reach and stop it."""

    root: str
    url: str
    username: str
    password: str
    email: str
    started_here: bool

    def env(self) -> dict[str, str]:
        """The ``FIFTYONE_CVAT_*`` variables FiftyOne and FIXER read."""
        return {
            "FIFTYONE_CVAT_URL": self.url,
            "FIFTYONE_CVAT_USERNAME": self.username,
            "FIFTYONE_CVAT_PASSWORD": self.password,
            "FIFTYONE_CVAT_EMAIL": self.email,
        }

    def session(self) -> requests.Session:
        """An HTTP session logged in the way CVAT's REST API expects."""
        session = requests.Session()
        session.auth = (self.username, self.password)
        return session

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """One REST call (``path`` like ``/api/tasks``); raises on errors."""
        with self.session() as session:
            response = session.request(method, self.url + path, **kwargs)
        if not response.ok:
            raise requests.HTTPError(
                f"{method} {path}: HTTP {response.status_code}: "
                f"{response.text[:500]}",
                response=response,
            )
        return response

    def wait_request(self, rq_id: str, timeout: float = 300) -> dict:
        """Waits for a background request (``/api/requests/<rq_id>``)."""
        deadline = time.monotonic() + timeout
        while True:
            request = self.api("GET", f"/api/requests/{rq_id}").json()
            if request["status"] == "finished":
                return request
            if request["status"] == "failed":
                raise RuntimeError(
                    f"CVAT request {rq_id} failed: {request.get('message')}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"CVAT request {rq_id}: {request}")
            time.sleep(0.5)

    def create_task(self, name: str, labels: list, images: list[Path]) -> int:
        """A task with these labels (CVAT's raw label specification) and
        images, in this order; waits until its data is ready."""
        task = self.api(
            "POST", "/api/tasks", json={"name": name, "labels": labels}
        ).json()
        files = [
            (f"client_files[{i}]", (path.name, path.read_bytes()))
            for i, path in enumerate(images)
        ]
        started = self.api(
            "POST",
            f"/api/tasks/{task['id']}/data",
            data={"image_quality": 95, "sorting_method": "predefined"},
            files=files,
        ).json()
        self.wait_request(started["rq_id"])
        return task["id"]

    def import_annotations(self, task_id: int, path: Path, fmt: str) -> None:
        """Uploads an annotation file in format ``fmt`` into a task."""
        started = self.api(
            "PUT",
            f"/api/tasks/{task_id}/annotations",
            params={"format": fmt, "conv_mask_to_poly": "false"},
            files={"annotation_file": (path.name, path.read_bytes())},
        ).json()
        self.wait_request(started["rq_id"])

    def export_annotations(self, task_id: int, fmt: str) -> bytes:
        """A task's annotations exported in format ``fmt`` (a zip)."""
        started = self.api(
            "POST",
            f"/api/tasks/{task_id}/dataset/export",
            params={"format": fmt, "save_images": "false"},
        ).json()
        url = self.wait_request(started["rq_id"])["result_url"]
        with self.session() as session:
            response = session.get(url)
        response.raise_for_status()
        return response.content

    def frame_names(self, task_id: int) -> list[str]:
        """The image names of a task, by frame."""
        meta = self.api("GET", f"/api/tasks/{task_id}/data/meta").json()
        return [frame["name"] for frame in meta["frames"]]

    def labels(self, task_id: int) -> dict[str, dict]:
        """A task's labels by name (with their ``attributes`` specs)."""
        page = self.api(
            "GET", "/api/labels", params={"task_id": task_id, "page_size": 500}
        ).json()
        return {label["name"]: label for label in page["results"]}

    def job_id(self, task_id: int) -> int:
        """The id of a task's only job."""
        page = self.api("GET", "/api/jobs", params={"task_id": task_id}).json()
        (job,) = page["results"]
        return job["id"]

    def shapes(self, job_id: int) -> list[dict]:
        """A job's shapes as CVAT stores them."""
        return self.api("GET", f"/api/jobs/{job_id}/annotations").json()[
            "shapes"
        ]

    def edit_shapes(self, job_id: int, action: str, shapes: list) -> None:
        """Saves shapes the way CVAT's editor does (``action``: ``create``,
        ``update`` or ``delete``)."""
        self.api(
            "PATCH",
            f"/api/jobs/{job_id}/annotations",
            params={"action": action},
            json={"version": 0, "tags": [], "shapes": shapes, "tracks": []},
        )

    def task_ids(self, name: str | None = None) -> list[int]:
        """The ids of the tasks (named ``name``, if given)."""
        params = {"page_size": 1000, **({"name": name} if name else {})}
        page = self.api("GET", "/api/tasks", params=params).json()
        return [t["id"] for t in page["results"] if name in (None, t["name"])]

    def stop_api_server(self) -> None:
        """Stops the API process (uvicorn) by the PID it recorded; the
        database, Redis and the workers keep running."""
        _script("stop_cvat.sh", "server", root=self.root, timeout=120)

    def restart(self) -> None:
        """Starts whatever stopped and waits until the login works."""
        _script("setup_cvat.sh", root=self.root, timeout=RESTART_TIMEOUT)

    def stop(self) -> None:
        """Stops every process of the server (its data stays)."""
        _script("stop_cvat.sh", root=self.root, timeout=120)


def mask_points(mask: np.ndarray) -> list[float]:
    """A CVAT ``mask`` shape's points for an ``(H, W)`` bool image: run
    lengths over the mask's box, row by row, starting with a run of
    background, then the box's inclusive corners."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    flat = mask[top : bottom + 1, left : right + 1].ravel()
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs.insert(0, 0)
    return [float(v) for v in (*runs, left, top, right, bottom)]


def points_mask(points: list[float], shape: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`mask_points`."""
    left, top, right, bottom = (int(v) for v in points[-4:])
    runs = [int(v) for v in points[:-4]]
    values = np.arange(len(runs)) % 2 == 1
    out = np.zeros(shape, dtype=bool)
    out[top : bottom + 1, left : right + 1] = np.repeat(values, runs).reshape(
        bottom - top + 1, right - left + 1
    )
    return out


def start() -> tuple[CvatServer | None, str]:
    """Returns ``(server, "")`` or ``(None, why there is none)``."""
    if reason := os.environ.get("FIXER_TEST_CVAT_SKIP"):
        return None, f"no CVAT server: {reason}"
    if not (SHARED_CVAT / "setup_cvat.sh").is_file():
        return None, f"no CVAT server scripts at {SHARED_CVAT}"
    root = os.environ.get("CVAT_ROOT", "/tmp/cvat")
    started_here = False
    try:
        running = _script("setup_cvat.sh", "wait", "1", root=root, check=False)
        if running.returncode != 0:
            _script("setup_cvat.sh", root=root, timeout=SETUP_TIMEOUT)
            started_here = True
        exports = _script("setup_cvat.sh", "env", root=root).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"the CVAT server of {SHARED_CVAT} did not start: {e}"
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in exports.splitlines()
        if line.startswith("export FIFTYONE_CVAT_")
    )
    server = CvatServer(
        root=root,
        url=env["FIFTYONE_CVAT_URL"],
        username=env["FIFTYONE_CVAT_USERNAME"],
        password=env["FIFTYONE_CVAT_PASSWORD"],
        email=env.get("FIFTYONE_CVAT_EMAIL", ""),
        started_here=started_here,
    )
    return server, ""


def _script(
    name: str,
    *args: str,
    root: str,
    timeout: float = 60,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Runs a script of ``../shared/cvat`` as it is; on failure the error
    holds the end of its output."""
    result = subprocess.run(
        ["bash", str(SHARED_CVAT / name), *args],
        env=dict(os.environ, CVAT_ROOT=root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise subprocess.SubprocessError(
            f"{name} {' '.join(args)} exited with {result.returncode}:\n"
            + "\n".join(tail)
        )
    return result
