"""Admin routes for dataset builds: started over HTTP, run in the background, read back as a status resource.

``POST /v1/admin/datasets`` answers 202 at once with the build (state ``running``) and ``Location``; the build
itself is ``deskcorder dataset build``'s library call (``dataset.build_from_store``: the read of raw events and
the build are audited, actor ``admin:<login>``) into ``<data_dir>/datasets/<name>`` on the collector's
machine. ``GET /v1/admin/datasets/{name}`` says ``running``, ``done`` (with its stats.json) or ``failed`` (with
what went wrong); ``.../card`` is the finished dataset's card (Markdown).

One build at a time per collector (409 while one runs): a build reads every event it covers and keeps a
core busy, and the collector's first job is taking uploads. A build is a background job rather than a long
request so that no proxy or client timeout cuts it off; its status lives in this process, and after a
restart a finished folder still reads as done (its stats.json), an unfinished one as failed.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any, Callable

from fastapi import APIRouter, Depends, Path as PathParam
from fastapi.responses import JSONResponse, Response

from ..._errors import DeskcorderError
from ...client import BUILD_NAME_PATTERN, Build, BuildRequest
from ...store import EventStore
from .._problems import Problem
from ._auth import admin_problems, stored

__all__ = ["build_routes", "DATASETS_DIR"]

log = logging.getLogger("deskcorder.collect")

DATASETS_DIR = "datasets"  # under the store's data dir
_CARD = "README.md"
_NAME = PathParam(description="the build's name (its folder)")


class _Builds:
    """The builds this process started, and the one worker thread they run on."""

    def __init__(self, store: EventStore, folder: Path):
        self.store = store
        self.folder = folder
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-build")

    def start(self, ask: BuildRequest, actor: str) -> dict[str, Any]:
        from ...dataset import BuildOptions

        try:  # the request model already holds each option to BuildOptions' rules; this is their last word
            options = BuildOptions(idle_gap_s=ask.idle_gap_s, formats=tuple(ask.formats), mode=ask.mode,
                                   linkable=ask.linkable)
        except ValueError as exc:
            raise Problem(422, str(exc), field="body") from exc
        if ask.linkable and ask.mode != "release":
            raise Problem(422, "linkable is for a release; an internal build always keeps the store's pseudonyms",
                          field="body.linkable")
        if ask.employee is not None:
            stored(self.store.employee, ask.employee, fields={None: "body.employee", "employee": "body.employee"})
        out = self.folder / ask.name
        with self._lock:
            running = [n for n, job in self._jobs.items() if job["state"] == "running"]
            if running:
                raise Problem(409, f"dataset build {running[0]!r} is still running; one build runs at a time, "
                                   f"start this one when GET /v1/admin/datasets/{running[0]} says done or failed",
                              field="body.name")
            if ask.name in self._jobs or out.exists():
                raise Problem(409, f"a dataset build named {ask.name!r} exists; choose another name",
                              field="body.name")
            job = {"name": ask.name, "state": "running", "out": str(out), "started_at": _now(),
                   "finished_at": None, "error": None, "stats": None}
            self._jobs[ask.name] = job
        self._worker.submit(self._run, job, ask, options, actor)
        return dict(job)

    def _run(self, job: dict[str, Any], ask: BuildRequest, options: Any, actor: str) -> None:
        from rich.console import Console

        from ...dataset import build_from_store

        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            stats = build_from_store(self.store, job["out"], actor=actor, purpose=ask.purpose, options=options,
                                     session_id=ask.session, employee=ask.employee,
                                     console=Console(stderr=True, quiet=True))
            update = {"state": "done", "stats": stats.as_json()}
        except DeskcorderError as exc:  # DatasetError, StoreError: their messages say what to do
            update = {"state": "failed", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a build's fault must not kill the worker; logged in full
            log.exception("dataset build %r failed", job["name"])
            update = {"state": "failed", "error": f"internal error ({type(exc).__name__}); see the collector's log"}
        with self._lock:
            job.update(update, finished_at=_now())

    def get(self, name: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(name)
            if job is not None:
                return dict(job)
        out = self.folder / name
        if not out.is_dir():
            raise Problem(404, f"no dataset build {name!r}; GET /v1/admin/audit?action=dataset.build lists past "
                               f"builds, POST /v1/admin/datasets starts one", field="path.name")
        try:  # built before this process started
            stats = json.loads((out / "stats.json").read_text())
            return {"name": name, "state": "done", "out": str(out), "started_at": None, "finished_at": None,
                    "error": None, "stats": stats}
        except (OSError, ValueError):
            return {"name": name, "state": "failed", "out": str(out), "started_at": None, "finished_at": None,
                    "error": "the build did not finish (the collector stopped during it); start it again under "
                             "another name", "stats": None}

    def card(self, name: str) -> str:
        build = self.get(name)
        if build["state"] != "done":
            raise Problem(409, f"dataset build {name!r} is {build['state']}: it has no card"
                               + (f" ({build['error']})" if build["error"] else "; ask again when it is done"),
                          field="path.name")
        try:
            return (Path(build["out"]) / _CARD).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise Problem(404, f"dataset build {name!r} has no {_CARD} card ({exc.strerror or exc})",
                          field="path.name") from exc


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def build_routes(router: APIRouter, store: EventStore, admin: Callable[..., str]) -> None:
    builds = _Builds(store, store.data_dir / DATASETS_DIR)

    @router.post("/v1/admin/datasets", status_code=202, response_model=Build, responses=admin_problems({
        400: "the body is not readable JSON", 404: "no such employee (`body.employee`)",
        409: "a build of that name exists, or another build is still running (`body.name`)",
        422: "a malformed name or option (`field`)"}))
    def start_build(ask: BuildRequest, actor: str = Depends(admin)) -> JSONResponse:
        """Start a dataset build into the collector's dataset folder NAME; 202 at once, then poll its status."""
        job = builds.start(ask, actor)
        return JSONResponse(Build.model_validate(job).model_dump(mode="json"), status_code=202,
                            headers={"Location": f"/v1/admin/datasets/{job['name']}"})

    @router.get("/v1/admin/datasets/{name}", response_model=Build, responses=admin_problems({
        404: "no such build", 422: "a malformed request"}))
    def show_build(actor: str = Depends(admin), name: str = _NAME) -> dict[str, Any]:
        """A build's state: running, done (with its stats.json) or failed (with what went wrong)."""
        return builds.get(_checked(name))

    @router.get("/v1/admin/datasets/{name}/card", response_class=Response, responses={
        200: {"content": {"text/markdown": {"schema": {"type": "string"}}},
              "description": "the dataset card: Markdown with its YAML header"},
        **admin_problems({404: "no such build", 409: "the build is still running, or failed",
                          422: "a malformed request"})})
    def build_card(actor: str = Depends(admin), name: str = _NAME) -> Response:
        """A finished build's dataset card (Markdown)."""
        return Response(builds.card(_checked(name)), media_type="text/markdown; charset=utf-8")


def _checked(name: str) -> str:
    """A name that is a build's: one never made is a 404, whatever it holds (no path leaves the folder)."""
    if not re.match(BUILD_NAME_PATTERN, name):
        raise Problem(404, f"no dataset build {name!r}: build names are letters, digits, _ and -", field="path.name")
    return name
