"""Storage backends: where blobs and attrs live (local disk or S3)."""

from __future__ import annotations

from artstore.storage_element.backends.base import Backend
from artstore.storage_element.layout import Layout
from artstore.storage_element.settings import SESettings


def make_backend(settings: SESettings, layout: Layout) -> Backend:
    if settings.backend == "s3":
        from artstore.storage_element.backends.s3 import S3Backend

        return S3Backend(settings, layout)
    from artstore.storage_element.backends.local import LocalBackend

    return LocalBackend(
        layout,
        flush=settings.group_commit_flush,
        publish_dir_fsync=not settings.test_skip_publish_dir_fsync,
    )
