"""Observations (frames, UI elements, geometry) through a real collector and the store: stored once, sealed,
refused where the policy, consent, clock or owner says no, and gone wherever events go.

Frames are real PNG images made with Pillow, each carrying a distinctive text marker in a tEXt chunk: its
bytes are in the image in clear, so finding them in no file under the data dir (or in no object of the
bucket) shows the frame was sealed; finding the sealed bytes nowhere after an erasure shows it was deleted.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgpack
import pytest
from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select

from deskcorder.events import events_to_columns
from deskcorder.observations import Box, Element, Frame, Observation, encode_observations
from deskcorder.store import EventStore, NotFound
from deskcorder.store._db._tables import observation_files, stored_observations
from deskcorder.wire import MSGPACK

from .helpers import ALLOW_ALL_POLICY, READ, TEST_ACTOR, auth_headers, enrol, start_collector
from .privacy_rig import disk_bytes
from .test_portal_auth import post_events, typing_events
from .s3_rig import s3_bucket_url, s3_endpoint  # noqa: F401  (fixtures: the object-store backend)
from .test_fleet_jetstream import nats_url, pg_url, start_fleet_collector, stream, stream_state  # noqa: F401

POLICY = ALLOW_ALL_POLICY.replace("retention_days = 3650\n", 'retention_days = 3650\nobserve = "{observe}"\n')


def policy(version: int, observe: str) -> str:
    return POLICY.format(observe=observe).replace("version = 1\n", f"version = {version}\n")


def png(marker: str, colour: tuple[int, int, int] = (200, 40, 120), size: tuple[int, int] = (64, 48)) -> bytes:
    """A real PNG whose bytes hold ``marker`` in clear (a tEXt chunk) and ``colour`` in its pixels."""
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).rectangle((4, 4, 20, 20), fill=(255, 255, 255))
    info = PngInfo()
    info.add_text("marker", marker)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def observation(session: str, seq: int, *, frame: bytes | None = None, element: bool = True,
                t: int | None = None) -> Observation:
    return Observation(
        session_id=session, action_seq=seq, t_mono_ns=seq * 1000, t_wall_ns=(t or time.time_ns()) + seq,
        trigger="button_down", screen_width=1920, screen_height=1080, window_x=100, window_y=50,
        window_width=800, window_height=600, monitors=[Box(0, 0, 1920, 1080)], dpi=96.0,
        frame=None if frame is None else Frame("png", 64, 48, frame, [Box(1, 1, 8, 8)]),
        element=Element("push button", "Save", ["enabled", "focused"], Box(120, 80, 60, 24), ["panel", "frame"])
        if element else None)


def post(url: str, device: str, observations: list[Observation], *, device_id: str | None = None,
         body: bytes | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    body = encode_observations(device_id or device, observations) if body is None else body
    return httpx.post(f"{url}/v1/observations", content=body, timeout=20,
                      headers={"Content-Type": MSGPACK, **auth_headers(url, device), **(headers or {})})


def person(store: EventStore) -> tuple[str, str]:
    """A new employee with one enrolled device and consent in force: (handle, device id)."""
    handle, device = f"p-{uuid.uuid4().hex[:8]}", f"desk-{uuid.uuid4().hex[:10]}"
    enrol(store, handle, device)
    return handle, device


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, EventStore]]:
    data_dir = tmp_path_factory.mktemp("observations") / "data"
    with EventStore(data_dir) as store:
        store.set_policy(policy(1, "frames"), actor=TEST_ACTOR)
        with start_collector(data_dir) as url:
            yield url, store


def files_of(store: EventStore, device: str) -> list[str]:
    with store._engine.connect() as conn:
        return list(conn.execute(select(observation_files.c.path)
                                 .where(observation_files.c.device_id == device)).scalars())


def test_observations_are_stored_once_and_read_back_as_sent(collector: tuple[str, EventStore]) -> None:
    url, store = collector
    handle, device = person(store)
    session = uuid.uuid4().hex
    sent = [observation(session, 3, frame=png("ROUNDTRIP-1")), observation(session, 7),
            observation(session, 9, frame=png("ROUNDTRIP-2"), element=False)]
    r = post(url, device, sent)
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 3, "duplicates": 0, "files": 1}
    again = post(url, device, sent)  # the agent's retry
    assert again.status_code == 200 and again.json() == {"stored": 0, "duplicates": 3, "files": 0}
    changed = [observation(session, 7, t=sent[1].t_wall_ns + 5)]
    refused = post(url, device, changed)
    assert refused.status_code == 409 and refused.json()["field"] == "observations[0]", refused.text

    back = store.read_observations(**READ, session_id=session)
    assert back == sent
    assert store.read_observations(**READ, employee=handle, frames=False)[0].frame.data == b""
    entry = store.audit_entries(action="observations.read")[-1]
    assert entry.details["n_observations"] == 3 and entry.details["n_frames"] == 2
    summary = store.observation_summaries([session])[session]
    assert (summary.observations, summary.frames, summary.elements) == (3, 2, 2)
    assert summary.frame_bytes == sum(len(o.frame.data) for o in sent if o.frame)


def test_what_may_not_be_stored_is_refused_naming_the_field(collector: tuple[str, EventStore]) -> None:
    url, store = collector
    _, device = person(store)
    _, other = person(store)
    session = uuid.uuid4().hex
    ok = [observation(session, 1, frame=png("REFUSALS"))]

    def answer(r: httpx.Response) -> tuple[int, str | None]:
        return r.status_code, r.json().get("field")

    assert httpx.post(f"{url}/v1/observations", content=encode_observations(device, ok),
                      headers={"Content-Type": MSGPACK}).status_code == 401
    assert answer(post(url, device, ok, headers={"Content-Type": "application/json"})) == (415, "Content-Type")
    plain = msgpack.unpackb(encode_observations(device, ok), raw=False)
    plain["observations"][0]["action_seq"] = 1.0  # never coerced
    assert answer(post(url, device, [], body=msgpack.packb(plain))) == (422, "observations[0].action_seq")
    big = [observation(session, 1, frame=b"\x89PNG\r\n\x1a\n" + bytes(4 * 1024 * 1024))]
    assert answer(post(url, device, big)) == (422, "observations[0].frame.data")
    assert answer(post(url, device, [], body=b"\xc1")) == (400, "body")
    assert answer(post(url, device, ok, device_id=other)) == (403, "device_id")  # another device's upload
    ahead = [observation(session, 1, t=time.time_ns() + 3 * 86400 * 10**9)]  # beyond the collector's skew
    assert answer(post(url, device, ahead)) == (422, "observations[0].t_wall_ns")
    before = [observation(session, 1, t=time.time_ns() - 3600 * 10**9)]  # before their consent
    assert answer(post(url, device, before)) == (403, "observations[0].t_wall_ns")
    unconsented = f"desk-{uuid.uuid4().hex[:10]}"
    enrol(store, f"p-{uuid.uuid4().hex[:8]}", unconsented, consent=False)
    assert answer(post(url, unconsented, ok)) == (403, "device_id")
    assert post(url, device, ok).status_code == 200
    assert answer(post(url, other, ok, device_id=other)) == (409, "observations.session_id")  # not their session
    theirs = uuid.uuid4().hex  # a session known from its events only
    post_events(url, uuid.uuid4().hex, other, typing_events(theirs, "x", "Editor"))
    assert answer(post(url, device, [observation(theirs, 1)])) == (409, "observations.session_id")
    # ... and a session known from its observations only is refused to another device's events too.
    r = httpx.post(f"{url}/v1/batches", headers=auth_headers(url, other), timeout=10, json={
        "v": 1, "batch_id": uuid.uuid4().hex, "device_id": other,
        "events": events_to_columns(typing_events(session, "x", "Editor"))})
    assert answer(r) == (409, "events.session_id")
    assert len(files_of(store, device)) == 1 and files_of(store, other) == []


def test_the_policy_level_decides_what_is_stored(tmp_path: Path) -> None:
    with EventStore(tmp_path / "data") as store:
        store.set_policy(policy(1, "elements"), actor=TEST_ACTOR)
        handle, device = person(store)
        with start_collector(tmp_path / "data") as url:
            session = uuid.uuid4().hex
            r = post(url, device, [observation(session, 1), observation(session, 2, frame=png("LEVEL"))])
            assert (r.status_code, r.json()["field"]) == (403, "observations[1].frame"), r.text
            assert "observe = 'elements'" in r.json()["error"]
            assert post(url, device, [observation(session, 1)]).json()["stored"] == 1
            store.set_policy(policy(2, "none"), actor=TEST_ACTOR)
            store.record_consent(handle, "give", policy_version=2, method="api", actor=TEST_ACTOR)
            r = post(url, device, [observation(session, 5, t=time.time_ns() + 10**9)])
            assert (r.status_code, r.json()["field"]) == (403, "observations[0]"), r.text
        assert [o.action_seq for o in store.read_observations(**READ, employee=handle)] == [1]


def test_frames_are_sealed_and_erasure_removes_every_byte(collector: tuple[str, EventStore]) -> None:
    url, store = collector
    handle, device = person(store)
    _, bystander = person(store)
    marker, kept = f"ERASEME-{uuid.uuid4().hex}", f"KEEPME-{uuid.uuid4().hex}"
    session = uuid.uuid4().hex
    assert post(url, device, [observation(session, i, frame=png(marker)) for i in range(3)]).status_code == 200
    assert post(url, bystander, [observation(uuid.uuid4().hex, 1, frame=png(kept))]).status_code == 200
    data_dir = store.data_dir
    on_disk = disk_bytes(data_dir)
    assert marker.encode() not in on_disk and kept.encode() not in on_disk  # sealed, never in clear
    assert marker.encode() in store.read_observations(**READ, session_id=session)[0].frame.data
    paths = files_of(store, device)
    sealed = [store.files.get(p) for p in paths]
    assert paths and all(p.startswith("observations/date=") for p in paths)

    store.erase_employee(handle, actor=TEST_ACTOR, reason="test: erasure takes frames")
    after = disk_bytes(data_dir)
    assert not any(blob[40:104] in after for blob in sealed)  # no sealed byte run of theirs is left anywhere
    assert not list((data_dir / "observations").rglob(f"device={device}"))
    with store._engine.connect() as conn:
        assert conn.execute(select(stored_observations).where(stored_observations.c.device_id == device)).all() == []
    assert kept.encode() in store.read_observations(**READ, device_id=bystander)[0].frame.data


def test_subject_access_export_holds_every_frame_as_an_image(collector: tuple[str, EventStore], tmp_path: Path) -> None:
    url, store = collector
    handle, device = person(store)
    session = uuid.uuid4().hex
    sent = [observation(session, 1, frame=png("EXPORT-A")), observation(session, 2),
            observation(session, 4, frame=png("EXPORT-B", (10, 200, 30)))]
    assert post(url, device, sent).status_code == 200
    out = store.export_employee(handle, tmp_path / "export.zip", actor=TEST_ACTOR)
    with zipfile.ZipFile(out) as zf:
        lines = [json.loads(line) for line in zf.read("observations.jsonl").decode().splitlines()]
        images = {name: zf.read(name) for name in zf.namelist() if name.startswith("frames/")}
        readme = zf.read("README.txt").decode()
    assert [line["action_seq"] for line in lines] == [1, 2, 4]
    assert lines[1]["frame"] is None and lines[1]["element"]["name"] == "Save"
    assert {images[line["frame"]["file"]] for line in lines if line["frame"]} == {sent[0].frame.data,
                                                                                 sent[2].frame.data}
    assert Image.open(io.BytesIO(images[lines[2]["frame"]["file"]])).getpixel((40, 40)) == (10, 200, 30)
    assert "3 observations, 2 frames" in " ".join(readme.split())
    assert store.audit_entries(action="employee.export")[-1].details["n_frames"] == 2


def test_deleting_one_session_removes_its_frames_and_not_another(collector: tuple[str, EventStore]) -> None:
    url, store = collector
    handle, device = person(store)
    gone_marker, kept_marker = f"GONE-{uuid.uuid4().hex}", f"KEPT-{uuid.uuid4().hex}"
    gone, kept = uuid.uuid4().hex, uuid.uuid4().hex
    for session, marker in ((gone, gone_marker), (kept, kept_marker)):
        post_events(url, uuid.uuid4().hex, device, typing_events(session, "hello", "Editor"))
        assert post(url, device, [observation(session, 1, frame=png(marker))]).status_code == 200
    sealed_gone = [store.files.get(p) for p in files_of(store, device)
                   if marker_in(store, p, gone)]

    report = store.delete_events(handle, session_id=gone, actor=TEST_ACTOR, reason="test: delete one session")
    assert report.sessions == 1
    left = store.read_observations(**READ, employee=handle)
    assert [o.session_id for o in left] == [kept] and kept_marker.encode() in left[0].frame.data
    after = disk_bytes(store.data_dir)
    assert sealed_gone and not any(blob[40:104] in after for blob in sealed_gone)
    with pytest.raises(NotFound):
        store.read_frame(handle, gone, 1, actor=TEST_ACTOR, purpose="test")
    # The agent's retry of the deleted observation is a duplicate, never stored again.
    retry = post(url, device, [o for o in [observation(gone, 1, frame=png(gone_marker))]])
    assert retry.status_code in (200, 409)
    assert store.read_observations(**READ, session_id=gone) == []
    entry = store.audit_entries(action="events.delete")[-1]
    assert entry.details["observations"] == 1 and entry.details["frames"] == 1


def test_a_session_that_holds_only_observations_is_deleted_too(collector: tuple[str, EventStore]) -> None:
    """Its frames came in, its events never did (the agent's spool was lost): the deletion must still find it."""
    url, store = collector
    handle, device = person(store)
    kept = uuid.uuid4().hex
    post_events(url, uuid.uuid4().hex, device, typing_events(kept, "hello", "Editor"))
    gone, marker = uuid.uuid4().hex, f"ONLY-FRAMES-{uuid.uuid4().hex}"
    assert post(url, device, [observation(gone, 1, frame=png(marker))]).status_code == 200
    assert [o.session_id for o in store.read_observations(**READ, session_id=gone)] == [gone]

    report = store.delete_events(handle, session_id=gone, actor=TEST_ACTOR, reason="test: frames-only session")
    assert report.events == 0
    assert store.read_observations(**READ, session_id=gone) == []
    assert store.read_events(**READ).num_rows > 0  # the other session's events stay
    entry = store.audit_entries(action="events.delete")[-1]
    assert entry.details["observations"] == 1 and entry.details["frames"] == 1
    with pytest.raises(NotFound):  # and a session that holds nothing at all is still not found
        store.delete_events(handle, session_id=uuid.uuid4().hex, actor=TEST_ACTOR, reason="test: nothing")


def marker_in(store: EventStore, path: str, session: str) -> bool:
    with store._engine.connect() as conn:
        return conn.execute(select(observation_files.c.session_id)
                            .where(observation_files.c.path == path)).scalar() == session


def test_retention_deletes_observation_partitions_with_an_audit_entry(tmp_path: Path) -> None:
    import datetime as dt

    with EventStore(tmp_path / "data") as store:
        store.set_policy(policy(1, "frames"), actor=TEST_ACTOR)
        handle, device = person(store)
        store.write_observations(device, [observation("sess-retention", 1, frame=png("RETAIN"))])
        assert files_of(store, device)
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3652)
        planned = store.apply_retention(later, TEST_ACTOR, dry_run=True)
        # Said as observations, not as a partition of "0 events" (what `deskcorder retention apply` printed).
        assert [d.describe().split(" date=")[0] for d in planned if d.observations] == ["observations"]
        assert any(d.observations == 1 and "1 observations, 1 sessions" in d.describe() for d in planned)
        assert files_of(store, device)  # a dry run deletes nothing
        store.apply_retention(later, TEST_ACTOR)
        assert files_of(store, device) == [] and not list((tmp_path / "data" / "observations").rglob("*.parquet"))
        entry = store.audit_entries(action="retention.delete")[-1]
        assert entry.target.startswith("partition:observations/date=") and entry.details["observations"] == 1
        assert store.read_observations(**READ, employee=handle) == []


def test_in_an_object_store_frames_are_sealed_objects_beside_the_events(tmp_path: Path, s3_bucket_url: str) -> None:  # noqa: F811
    import pyarrow.fs as pafs

    with EventStore(tmp_path / "data", events_url=s3_bucket_url) as store:
        store.set_policy(policy(1, "frames"), actor=TEST_ACTOR)
        handle, device = person(store)
        marker = f"S3FRAME-{uuid.uuid4().hex}"
        sent = [observation("sess-s3-0001", 1, frame=png(marker))]
        assert store.write_observations(device, sent).stored == 1
        assert store.read_observations(**READ, employee=handle) == sent
        fs, base = pafs.FileSystem.from_uri(s3_bucket_url)
        objects = [i.path for i in fs.get_file_info(pafs.FileSelector(base, recursive=True))
                   if i.type == pafs.FileType.File]
        assert any("/observations/date=" in p for p in objects)
        blobs = b"".join(fs.open_input_stream(p).readall() for p in objects)
        assert marker.encode() not in blobs
        store.erase_employee(handle, actor=TEST_ACTOR, reason="test")
        assert not [i for i in fs.get_file_info(pafs.FileSelector(base, recursive=True))
                    if "observations/" in i.path and i.type == pafs.FileType.File]


def test_an_employee_sees_only_their_own_frames_in_the_portal_and_deleting_the_session_removes_them(
        collector: tuple[str, EventStore]) -> None:
    from .test_portal_auth import csrf_of, log_in

    url, store = collector
    (owner, device), (stranger, _) = person(store), person(store)
    for handle in (owner, stranger):
        store.portal.set_password(handle, "portal password 123", role="employee", actor=TEST_ACTOR)
    session = uuid.uuid4().hex
    post_events(url, uuid.uuid4().hex, device, typing_events(session, "hi", "Editor"))
    sent = [observation(session, 2, frame=png("PORTAL-A")), observation(session, 5, frame=png("PORTAL-B"))]
    assert post(url, device, sent).status_code == 200

    me, other = log_in(url, owner, "portal password 123"), log_in(url, stranger, "portal password 123")
    try:
        page = me.get(f"/me/sessions/{session}")
        assert page.status_code == 200 and 'id="frames"' in page.text
        links = [f"/me/sessions/{session}/frames/{seq}" for seq in (2, 5)]
        assert all(f'src="{link}"' in page.text for link in links)
        image = me.get(links[1])
        assert image.status_code == 200 and image.content == sent[1].frame.data
        assert image.headers["content-type"] == "image/png" and image.headers["cache-control"] == "no-store"
        entry = store.audit_entries(action="observations.read")[-1]
        assert (entry.actor, entry.details["action_seq"]) == (f"employee:{store.employee(owner).employee_id}", 5)
        assert other.get(links[1]).status_code == 404  # someone else's frame: as if there were none
        assert me.get(f"/me/sessions/{session}/frames/3").status_code == 404  # an action without a frame

        token = csrf_of(me.get("/me/sessions").text)
        assert me.post("/me/delete", data={"session": session, "csrf_token": token}).status_code == 303
        assert me.get(links[0]).status_code == 404
    finally:
        me.close()
        other.close()
    assert store.read_observations(**READ, employee=owner) == []


def test_a_fleet_collector_writes_frames_to_the_object_store_never_through_jetstream(
        tmp_path: Path, s3_bucket_url: str, nats_url: str, stream: str, pg_url: str) -> None:  # noqa: F811
    import random

    from .helpers import _stop

    data_dir = tmp_path / "data"
    with EventStore(data_dir, database_url=pg_url, events_url=s3_bucket_url) as store:
        store.set_policy(policy(1, "frames"), actor=TEST_ACTOR)
        handle, device = person(store)
    # Noise does not compress: a 1.7 MB PNG, over NATS's default 1 MiB message limit.
    noise = Image.frombytes("RGB", (760, 760), random.Random(1).randbytes(760 * 760 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    assert len(out.getvalue()) > 1024 * 1024
    sent = [observation("sess-fleet-01", 1, frame=out.getvalue())]
    proc, url = start_fleet_collector(data_dir, nats_url, stream, "--database-url", pg_url)
    try:
        r = post(url, device, sent)
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text
        assert stream_state(nats_url, stream)["messages"] == 0  # nothing of it was published
    finally:
        _stop(proc)
    with EventStore(data_dir, database_url=pg_url) as store:  # events_url was recorded in the database
        assert store.events_url == s3_bucket_url
        assert store.read_observations(**READ, employee=handle) == sent


def test_two_writers_racing_with_the_same_upload_store_it_once(tmp_path: Path) -> None:
    """Two processes' writers (the in-process lock left out): the manifest's keys let one win, the other answers
    duplicates, whichever order their commits come in."""
    import datetime as dt
    import threading

    from deskcorder.store._observations._write import write_observations

    with EventStore(tmp_path / "data") as store:
        store.set_policy(policy(1, "frames"), actor=TEST_ACTOR)
        handle, device = person(store)
        sent = [observation("sess-race-0001", i, frame=png(f"RACE-{i}")) for i in range(5)]
        results: list[Any] = []
        start = threading.Barrier(2)

        def write() -> None:
            start.wait()
            results.append(write_observations(store._engine, store.files, store._wrapper, device, sent,
                                              now=dt.datetime.now(dt.timezone.utc), max_clock_skew_s=None))

        threads = [threading.Thread(target=write) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted((r.stored, r.duplicates) for r in results) == [(0, 5), (5, 0)]
        assert store.read_observations(**READ, employee=handle) == sent
        assert len(files_of(store, device)) == 1
