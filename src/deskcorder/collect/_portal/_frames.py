"""An employee's own frames in the portal: the thumbnails of a session page, and each frame's image.

``GET /me/sessions/{session_id}/frames/{action_seq}`` answers the image (WebP
or PNG, as the agent stored it) only to the login whose session it is; any
other session, action or person answers 404, like one that does not exist.
Each fetch is read through ``EventStore.read_frame``, so it is in the audit log
(``observations.read``) with the employee as actor, and in their export. The
session page lists its frames from a read without the image bytes
(``frames=False``), itself audited once.

Images are sent with ``Cache-Control: no-store`` (they are personal data, and a
deleted session's frames must not live on in a browser cache) and ``nosniff``.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ...observations import Observation
from ...store import EventStore, NotFound, StoreError
from .._problems import store_problem
from ._auth import Auth, Viewer
from ._pages import PageMissing

__all__ = ["frames_router", "session_frames", "SHOWN_FRAMES"]

PURPOSE = "subject access via portal"  # as _employee.PURPOSE
SHOWN_FRAMES = 48  # thumbnails on one session page (the export holds all of them)
_MEDIA = {"webp": "image/webp", "png": "image/png"}


@dataclasses.dataclass(frozen=True)
class Thumbnail:
    url: str
    t_wall_ns: int
    trigger: str
    label: str  # the UI element acted on, as the person would say it ("push button Save"), or ""


def session_frames(store: EventStore, viewer: Viewer, session_id: str) -> tuple[list[Thumbnail], int]:
    """The first ``SHOWN_FRAMES`` frames of one of the viewer's sessions (the caller checked it is theirs), and
    how many the session holds."""
    observed = store.read_observations(actor=viewer.actor, purpose=PURPOSE, employee=viewer.handle,
                                       session_id=session_id, frames=False)
    with_frames = [o for o in observed if o.frame is not None]
    return [_thumbnail(o) for o in with_frames[:SHOWN_FRAMES]], len(with_frames)


def _thumbnail(o: Observation) -> Thumbnail:
    e = o.element
    label = "" if e is None else " ".join(p for p in (e.role, e.name) if p)
    url = f"/me/sessions/{quote(o.session_id, safe='')}/frames/{o.action_seq}"
    return Thumbnail(url, o.t_wall_ns, o.trigger, label)


def frames_router(store: EventStore, auth: Auth) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/me/sessions/{session_id}/frames/{action_seq}")
    def frame(session_id: str, action_seq: int, viewer: Viewer = Depends(auth.employee)) -> Response:
        try:
            found = store.read_frame(viewer.handle, session_id, action_seq, actor=viewer.actor, purpose=PURPOSE)
        except NotFound as exc:  # not theirs, no frame, or deleted: the same answer
            raise PageMissing(f"You have no stored frame {action_seq} in session {session_id!r}. Your sessions "
                              f"are listed at /me/sessions.") from exc
        except StoreError as exc:
            raise store_problem(exc) from exc
        return Response(found.data, media_type=_MEDIA[found.format],
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    return router
