"""A storage element under test: a real process, its data directory and a client."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from tests.support.issuer import ALL_SCOPES, TestIssuer
from tests.support.process import ServiceProcess, free_port
from tests.support.seaweed import SeaweedServer

ATTR_SUFFIX = ".attr.json"
# A preview sidecar's name ends so (storage_element/layout.py, issue 16).
PREVIEW_NAME = re.compile(r"\.preview-[0-9]{1,4}-[0-9a-f]{16}\.(webp|jpg)$")
S3_CAPACITY = 100 * 1024**3  # a bucket has no size; tests that care pass their own


@dataclass(frozen=True)
class SEBackend:
    """Where an SE under test keeps its files: ``local`` disk or ``s3`` on ``server``."""

    name: str = "local"
    server: SeaweedServer | None = None


class _Stat(NamedTuple):
    st_size: int


@dataclass(frozen=True, order=True)
class S3Object:
    """An object of an SE on S3, standing in for the ``Path`` of a local file.

    Compared by key only, as paths are: an attr replaced in place is "the same file".
    """

    key: str
    size: int = field(compare=False)
    s3: Any = field(compare=False, repr=False)
    bucket: str = field(compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def read_bytes(self) -> bytes:
        with self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"] as body:
            return bytes(body.read())

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def stat(self) -> _Stat:
        return _Stat(self.size)


class StorageElementUnderTest:
    __test__ = False

    def __init__(
        self,
        root: Path,
        issuer: TestIssuer,
        database_url: str,
        mode: str,
        env: dict[str, str] | None = None,
        backend: SEBackend | None = None,
        *,
        host: str | None = None,
        wrap: Sequence[str] = (),
    ) -> None:
        """``host`` and ``wrap``: see :class:`ServiceProcess` (an SE in a network
        namespace, tests/support/netns.py)."""
        self.id = f"se-{uuid.uuid4().hex[:8]}"
        self.data_dir = root / self.id
        self.issuer = issuer
        self.backend = backend or SEBackend()
        self.s3_prefix = f"{self.id}/"
        backend_env: dict[str, str] = {}
        if self.backend.server is not None:
            backend_env = {
                **self.backend.server.s3_env(self.s3_prefix),
                "SE_MAX_CAPACITY": str(S3_CAPACITY),
            }
            self._s3 = self.backend.server.client()
        base_env = {
            "SE_ID": self.id,
            "SE_MODE": mode,
            "SE_DATA_DIR": str(self.data_dir),
            "SE_RESERVE_BYTES": "0",
            "DATABASE_URL": database_url,
            "JWKS_URL": issuer.jwks_url,
            "JWT_ISSUER": "artstore-test",
            "JWT_AUDIENCE": "artstore",
            "LOG_FORMAT": "json",
            "SE_CATALOG_RETRY_INTERVAL": "0.5",
            **backend_env,
            **(env or {}),
        }
        root.mkdir(parents=True, exist_ok=True)
        self.process = ServiceProcess(
            "storage-element",
            base_env,
            free_port(),
            root / f"{self.id}.log",
            host=host,
            wrap=wrap,
        )

    @property
    def url(self) -> str:
        return self.process.url

    def start(self, **extra_env: str) -> StorageElementUnderTest:
        self.process.start(extra_env)
        return self

    def restart(self, **extra_env: str) -> StorageElementUnderTest:
        self.process.stop()
        return self.start(**extra_env)

    def client(self, scopes: str = ALL_SCOPES, sub: str = "alice", **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.issuer.token(scopes, sub)}"} if scopes else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0, **kw)

    # -- inspection of what the SE stored (data directory or bucket) ----------------------
    @property
    def on_s3(self) -> bool:
        return self.backend.server is not None

    def _objects(self) -> list[S3Object]:
        """Every object under this SE's prefix but quarantine/ and the ownership marker
        (as ``files/`` is on disk)."""
        assert self.backend.server is not None
        bucket = self.backend.server.bucket
        out = []
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=self.s3_prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(self.s3_prefix) :]
                # quarantine/ is what files/ is not; the marker names the owning SE.
                if not rel.startswith("quarantine/") and rel != ".artstore-se.json":
                    out.append(S3Object(obj["Key"], int(obj["Size"]), self._s3, bucket))
        return sorted(out)

    def multipart_uploads(self) -> list[str]:
        """Keys of uncompleted multipart uploads under this SE's prefix (S3 only)."""
        assert self.backend.server is not None
        pages = self._s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.backend.server.bucket, Prefix=self.s3_prefix
        )
        return sorted(str(u["Key"]) for page in pages for u in page.get("Uploads", []))

    def tmp_entries(self) -> list[str]:
        """In-flight writes: files in tmp/, and on S3 uncompleted multipart uploads."""
        tmp = self.data_dir / "tmp"
        local = sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []
        if self.on_s3:
            local += [f"multipart:{key}" for key in self.multipart_uploads()]
        return local

    def _stored(self) -> list[Any]:
        """Every stored object but the attrs: blobs and preview sidecars."""
        if self.on_s3:
            return [o for o in self._objects() if not o.key.endswith(ATTR_SUFFIX)]
        files = self.data_dir / "files"
        return sorted(
            p for p in files.rglob("*") if p.is_file() and not p.name.endswith(ATTR_SUFFIX)
        )

    def blobs(self) -> list[Any]:
        """Stored blobs: ``Path``s on disk, ``S3Object``s on S3 (both have name, stat())."""
        return [b for b in self._stored() if PREVIEW_NAME.search(b.name) is None]

    def sidecars(self) -> list[Any]:
        """Stored preview sidecars (issue 16), as ``blobs`` lists blobs."""
        return [b for b in self._stored() if PREVIEW_NAME.search(b.name) is not None]

    def put_object(self, relative: str, data: bytes) -> None:
        """Write an object below ``files/`` (or the SE's prefix) behind the SE's back."""
        if self.on_s3:
            assert self.backend.server is not None
            self._s3.put_object(
                Bucket=self.backend.server.bucket, Key=self.s3_prefix + relative, Body=data
            )
            return
        path = self.data_dir / "files" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def remove_object(self, relative: str) -> None:
        if self.on_s3:
            assert self.backend.server is not None
            self._s3.delete_object(Bucket=self.backend.server.bucket, Key=self.s3_prefix + relative)
            return
        (self.data_dir / "files" / relative).unlink()

    def relative(self, obj: Any) -> str:
        """The path below ``files/`` (or the prefix) of a ``blobs``/``attrs`` entry."""
        if self.on_s3:
            return str(obj.key)[len(self.s3_prefix) :]
        return str(obj.relative_to(self.data_dir / "files").as_posix())

    def attrs(self) -> list[Any]:
        if self.on_s3:
            return [o for o in self._objects() if o.key.endswith(ATTR_SUFFIX)]
        return sorted((self.data_dir / "files").rglob(f"*{ATTR_SUFFIX}"))

    def orphan_blobs(self) -> list[Any]:
        if self.on_s3:
            attrs = {o.key for o in self.attrs()}
            return [b for b in self.blobs() if b.key + ATTR_SUFFIX not in attrs]
        return [b for b in self.blobs() if not Path(f"{b}{ATTR_SUFFIX}").exists()]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_process_node(data_dir: Path) -> Any:
    """An SEState on a local ``data_dir`` with no catalog and no periodic maintenance,
    for tests that drive ``lifecycle.start``/``stop`` in the test's own event loop."""
    from artstore.storage_element.settings import SESettings
    from artstore.storage_element.state import SEState

    settings = SESettings(
        data_dir=data_dir,
        mode="edit",
        database_url="",
        gc_interval=0,
        reconcile_interval=0,
        scrub_bytes_per_sec=0,
    )
    return SEState(settings, None)
