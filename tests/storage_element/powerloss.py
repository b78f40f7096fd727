"""The power-loss harness: an SE on powerfs, a seeded workload, a power cut, a check.

A *cycle*: the SE runs a seeded mixed workload from a few client threads, each owning
the files it creates; after a seeded number of acknowledged changes (or when the SE
dies at its ``SE_CRASH_AT`` step) the SE is killed and the power cut
(``PowerMount.cut``: the backing directory becomes exactly what was durable); then
the SE restarts on that state and ``check`` holds it to the ledger:

- every acknowledged change is there (a file's bytes, version, description, status;
  a session's offset; the mode), or the one change that was in flight on top of it;
- nothing half-visible: no attr of a file nobody wrote, no blob without its attr,
  nothing in ``tmp/``;
- recovery finished (the SE answers), reconcile reports no issue and has nothing to
  fix in the catalog (catalog == attrs).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from artstore.storage_element.faults import CRASH_EXIT_CODE
from tests.support.powerfs.mount import PowerMount
from tests.support.se import StorageElementUnderTest

# Upload sizes: grouped (held in memory, one flush per group) up to 1 MiB, streamed above.
SIZES = (0, 1, 700, 4096, 70_000, 300_000, 1_300_000)


@dataclass(frozen=True)
class FileState:
    data: bytes
    version: int = 1
    description: str = ""
    status: str = "active"


@dataclass
class FileEntry:
    acked: FileState | None = None  # None: never acknowledged (an upload in flight)
    pending: FileState | None = None  # a change sent, its answer never seen
    mortal: bool = False  # GC may expire or reclaim it (ttl, or a tombstone)
    # ``Ledger.gcs_sent`` when a DELETE was sent: a GC sent after it may reclaim the
    # tombstone before the DELETE's answer arrives (the cut can fall in between).
    gcs_at_delete: int | None = None


@dataclass
class SessionEntry:
    data: bytes
    offset: int = 0  # acknowledged
    pending_offset: int | None = None
    completing: bool = False


@dataclass
class Ledger:
    files: dict[str, FileEntry] = field(default_factory=dict)
    sessions: dict[str, SessionEntry] = field(default_factory=dict)
    mode: str = ""
    mode_pending: str | None = None
    acks: int = 0
    gcs_sent: int = 0  # GC requests sent so far (each may reclaim tombstones)
    checked: int = 0  # acknowledged writes checked after cuts
    # Every state ever sent for a file, by version (versions only grow): a snapshot may
    # hold any of them between the one acknowledged before it and the last sent.
    sent: dict[str, dict[int, FileState]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.acked = threading.Condition(self.lock)

    def note(self, file_id: str, state: FileState) -> None:
        """``state`` of ``file_id`` is about to be sent (call with the lock held)."""
        self.sent.setdefault(file_id, {})[state.version] = state

    def ack(self) -> None:
        with self.acked:
            self.acks += 1
            self.acked.notify_all()


class Dead(Exception):
    """The SE is gone (killed for the cut, or at its crash step)."""


class Worker:
    """One client thread: uploads, PATCHes, previews, deletes its own files; GC, sessions,
    modes."""

    def __init__(
        self,
        se: StorageElementUnderTest,
        ledger: Ledger,
        rng: random.Random,
        scenario: str,
        sizes: tuple[int, ...] = SIZES,
        only: str | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.gate = gate  # cleared: wait before the next step (a snapshot is being checked)
        self.sizes = sizes
        self.only = only
        self.se = se
        self.ledger = ledger
        self.rng = rng
        self.scenario = scenario
        self.mine: list[str] = []
        self.error: BaseException | None = None
        self.done = False

    def run(self, ops: int) -> None:
        try:
            with self.se.client() as c:
                for _ in range(ops):
                    if self.gate is not None:
                        self.gate.wait()
                    self.step(c)
        except Dead:
            return
        except BaseException as exc:  # reported by the test, with its seed
            self.error = exc
        finally:
            self.done = True
            with self.ledger.acked:  # the cutter waits for acks or for every worker to end
                self.ledger.acked.notify_all()

    def _send(self, c: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            return c.request(method, url, **kw)
        except httpx.TransportError as exc:
            raise Dead from exc

    def step(self, c: httpx.Client) -> None:
        roll = self.rng.random()
        if self.only == "upload":
            self.upload(c)
            return
        live = [f for f in self.mine if self._changeable(f)]
        if roll < 0.45 or not live:
            self.upload(c)
        elif roll < 0.58:
            self.patch(c, self.rng.choice(live))
        elif roll < 0.65:
            self.preview(c, self.rng.choice(live))
        elif roll < 0.75 and self.scenario == "edit":
            self.delete(c, self.rng.choice(live))
        elif roll < 0.85:
            self.session(c)
        elif self.scenario == "edit":
            self.gc(c)
        else:
            self.transition(c)

    def _changeable(self, file_id: str) -> bool:
        """Active, and GC cannot touch it meanwhile (a version we did not write)."""
        with self.ledger.lock:
            entry = self.ledger.files.get(file_id)
            return (
                entry is not None
                and not entry.mortal
                and entry.acked is not None
                and entry.acked.status == "active"
            )

    def _state(self, file_id: str) -> FileState | None:
        with self.ledger.lock:
            return self.ledger.files[file_id].acked

    def upload(self, c: httpx.Client) -> None:
        size = self.rng.choice(self.sizes)
        data = self.rng.randbytes(size)
        file_id = str(_uuid(self.rng))
        mortal = self.scenario == "edit" and self.rng.random() < 0.3
        params: dict[str, Any] = {"filename": f"f{size}.bin", "file_id": file_id}
        if mortal:
            params["ttl_days"] = 1
        with self.ledger.lock:
            self.ledger.files[file_id] = FileEntry(pending=FileState(data), mortal=mortal)
            self.ledger.note(file_id, FileState(data))
        r = self._send(c, "POST", "/api/v1/files", content=data, params=params)
        if r.status_code == 409:  # the mode changed under it: never happened
            with self.ledger.lock:
                del self.ledger.files[file_id]
            return
        assert r.status_code == 201, r.text
        with self.ledger.lock:
            self.ledger.files[file_id] = FileEntry(acked=FileState(data), mortal=mortal)
        self.mine.append(file_id)
        self.ledger.ack()

    def _change(self, c: httpx.Client, file_id: str, new: FileState, method: str) -> None:
        with self.ledger.lock:
            self.ledger.files[file_id].pending = new
            self.ledger.note(file_id, new)
            if new.status == "deleted":
                self.ledger.files[file_id].gcs_at_delete = self.ledger.gcs_sent
        if method == "PATCH":
            r = self._send(
                c, "PATCH", f"/api/v1/files/{file_id}", json={"description": new.description}
            )
        elif method == "PREVIEW":  # a new preview sidecar (issue 16): a new attr version
            size = self.rng.choice((64, 256))
            image = b"RIFF\x00\x00\x00\x00WEBPVP8 " + self.rng.randbytes(200)
            r = self._send(
                c,
                "PUT",
                f"/api/v1/files/{file_id}/previews/{size}",
                content=image,
                headers={"Content-Type": "image/webp"},
            )
        else:
            r = self._send(c, "DELETE", f"/api/v1/files/{file_id}")
        with self.ledger.lock:
            entry = self.ledger.files[file_id]
            entry.pending = None
            if r.status_code in (200, 201, 204):
                entry.acked = new
                if new.status == "deleted":
                    entry.mortal = True
            elif r.status_code in (404, 409, 410):
                return  # the mode refused it, or GC took the file: nothing changed by us
            else:
                raise AssertionError(f"{method} {file_id}: {r.status_code} {r.text}")
        self.ledger.ack()

    def patch(self, c: httpx.Client, file_id: str) -> None:
        old = self._state(file_id)
        assert old is not None
        new = replace(old, version=old.version + 1, description=f"d{self.rng.getrandbits(32)}")
        self._change(c, file_id, new, "PATCH")

    def preview(self, c: httpx.Client, file_id: str) -> None:
        old = self._state(file_id)
        assert old is not None
        self._change(c, file_id, replace(old, version=old.version + 1), "PREVIEW")

    def delete(self, c: httpx.Client, file_id: str) -> None:
        old = self._state(file_id)
        assert old is not None
        self._change(c, file_id, replace(old, version=old.version + 1, status="deleted"), "DELETE")

    def gc(self, c: httpx.Client) -> None:
        at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        with self.ledger.lock:
            self.ledger.gcs_sent += 1
        r = self._send(c, "POST", "/api/v1/maintenance/gc", params={"now": at})
        if r.status_code == 409:  # another worker's GC is running
            return
        assert r.status_code == 200, r.text
        self.ledger.ack()

    def session(self, c: httpx.Client) -> None:
        data = self.rng.randbytes(self.rng.choice((1, 5000, 200_000)))
        r = self._send(
            c, "POST", "/api/v1/uploads", json={"length": len(data), "filename": "s.bin"}
        )
        if r.status_code == 409:
            return
        assert r.status_code == 201, r.text
        sid = r.json()["session_id"]
        entry = SessionEntry(data)
        with self.ledger.lock:
            self.ledger.sessions[sid] = entry
        self.ledger.ack()
        half = len(data) // 2
        for start, end in ((0, half), (half, len(data))):
            if start == end:
                continue
            with self.ledger.lock:
                entry.pending_offset = end
            r = self._send(
                c,
                "PATCH",
                f"/api/v1/uploads/{sid}",
                params={"offset": start},
                content=data[start:end],
            )
            if r.status_code == 409:
                return
            assert r.status_code == 200, r.text
            with self.ledger.lock:
                entry.offset, entry.pending_offset = end, None
            self.ledger.ack()
        with self.ledger.lock:
            entry.completing = True
            self.ledger.files[sid] = FileEntry(pending=FileState(data))
            self.ledger.note(sid, FileState(data))
        r = self._send(c, "POST", f"/api/v1/uploads/{sid}/complete")
        with self.ledger.lock:
            if r.status_code == 409:
                entry.completing = False
                del self.ledger.files[sid]
                return
            assert r.status_code == 201, r.text
            self.ledger.files[sid] = FileEntry(acked=FileState(data))
            del self.ledger.sessions[sid]
        self.mine.append(sid)
        self.ledger.ack()

    def transition(self, c: httpx.Client) -> None:
        with self.ledger.lock:
            target = "ro" if self.ledger.mode == "rw" else "rw"
            self.ledger.mode_pending = target
        r = self._send(
            c, "POST", "/api/v1/mode/transition", json={"target_mode": target, "confirm": True}
        )
        with self.ledger.lock:
            self.ledger.mode_pending = None
            if r.status_code == 409:  # another worker moved it first
                return
            assert r.status_code == 200, r.text
            self.ledger.mode = target
        self.ledger.ack()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def run_cycle(
    se: StorageElementUnderTest,
    ledger: Ledger,
    rng: random.Random,
    scenario: str,
    *,
    workers: int = 3,
    ops: int = 40,
    cut_after: int | None = None,
    sizes: tuple[int, ...] = SIZES,
    only: str | None = None,
) -> None:
    """Run the workload until ``cut_after`` more acknowledgements (or the SE dies on
    its own), then kill the SE. The caller cuts the power."""
    pool = [
        Worker(se, ledger, random.Random(rng.getrandbits(64)), scenario, sizes, only)
        for _ in range(workers)
    ]
    threads = [threading.Thread(target=w.run, args=(ops,)) for w in pool]
    for t in threads:
        t.start()
    if cut_after is not None:
        with ledger.acked:
            target = ledger.acks + cut_after
            ledger.acked.wait_for(lambda: ledger.acks >= target or all(w.done for w in pool), 120)
    else:
        code = se.process.wait_exit(300)  # dies at its SE_CRASH_AT step
        assert code == CRASH_EXIT_CODE, se.process.log()
    se.process.kill()
    for t in threads:
        t.join(60)
    for w in pool:
        if w.error is not None:
            raise w.error


def _reclaimable(entry: FileEntry, ledger: Ledger) -> bool:
    """A DELETE in flight at the cut, with a GC sent after it: the delete may have
    landed and the GC (its clock days ahead, past the reclaim age) removed the
    tombstone before the DELETE's answer reached us. Gone is then a right outcome."""
    return (
        entry.pending is not None
        and entry.pending.status == "deleted"
        and entry.gcs_at_delete is not None
        and ledger.gcs_sent > entry.gcs_at_delete
    )


def _accepted(entry: FileEntry) -> list[FileState | None]:
    return [entry.acked, *([entry.pending] if entry.pending is not None else [])]


def check(se: StorageElementUnderTest, ledger: Ledger) -> None:
    """The SE after a power cut and restart, held to the ledger."""
    with se.client() as c:
        info = c.get("/api/v1/info").json()
        modes = {ledger.mode, *([ledger.mode_pending] if ledger.mode_pending else [])}
        assert info["mode"] in modes, (info["mode"], modes)
        ledger.mode, ledger.mode_pending = info["mode"], None
        for file_id, entry in list(ledger.files.items()):
            r = c.get(f"/api/v1/files/{file_id}")
            ok = _accepted(entry)
            if r.status_code == 404:
                gone_ok = entry.mortal or _reclaimable(entry, ledger)
                assert None in ok or gone_ok, f"{file_id}: acknowledged, lost: {entry}"
                if entry.acked is None or gone_ok:
                    del ledger.files[file_id]
                continue
            assert r.status_code == 200, r.text
            meta = r.json()
            got = (meta["version"], meta.get("description") or "", meta["status"])
            states = [s for s in ok if s is not None]
            match = [s for s in states if (s.version, s.description, s.status) == got]
            if not match and entry.mortal and meta["status"] == "expired":
                match = [s for s in states if s.version + 1 == meta["version"]]
            seen = [(s.version, s.description, s.status) for s in states]
            assert match, f"{file_id}: {got} is none of {seen}"
            state = match[-1]
            if meta["status"] == "active":
                body = c.get(f"/api/v1/files/{file_id}/download")
                assert body.status_code == 200 and body.content == state.data, file_id
            ledger.checked += entry.acked is not None
            entry.acked = replace(state, version=meta["version"], status=meta["status"])
            entry.pending = None
            # A DELETE in flight at the cut that landed: a tombstone like any acknowledged
            # one, which a later GC may reclaim (found as 404 after a later cut).
            entry.mortal = entry.mortal or meta["status"] in ("deleted", "expired")
        for sid, sess in list(ledger.sessions.items()):
            r = c.get(f"/api/v1/uploads/{sid}")
            if sess.completing and r.status_code == 404 and sid in ledger.files:
                del ledger.sessions[sid]  # completed: checked as a file above
                continue
            assert r.status_code == 200, f"session {sid}: {r.status_code} {r.text}"
            offset = r.json()["offset"]
            assert offset in (sess.offset, sess.pending_offset), (sid, offset, sess)
            ledger.checked += 1
            sess.offset, sess.pending_offset, sess.completing = offset, None, False
            ledger.files.pop(sid, None)
        known = set(ledger.files) | set(ledger.sessions)
        for attr in se.attrs():
            file_id = json.loads(attr.read_bytes())["file_id"]
            assert file_id in known, f"an attr nobody wrote: {attr} ({file_id})"
        leftovers = se.tmp_entries()
        assert leftovers == [], f"left in tmp/: {leftovers}"
        orphans = se.orphan_blobs()
        assert orphans == [], f"blobs without their attr: {orphans}"
        report = c.post("/api/v1/maintenance/reconcile").json()
        assert report["issues"] == [], report
        cat = report["catalog"]
        assert cat["checked"] and (cat["inserted"], cat["updated"], cat["removed"]) == (0, 0, 0), (
            cat
        )


def power_cut(se: StorageElementUnderTest, mount: PowerMount) -> dict[str, int]:
    """Everything dies at once: the SE (already killed), then the disk forgets."""
    se.process.kill()
    stats = mount.cut()
    mount.mount()
    return stats
