"""The storage exception family: what a durable change can refuse with.

Each subclasses the matching class of ``artstore.common.errors``, so the HTTP status and
code come from the one hierarchy (and its one handler); callers may catch either name.
"""

from __future__ import annotations

from artstore.common import errors as common


class StoreError(common.ArtStoreError):
    """Marker base: raised by the FileStore (never instantiated itself)."""


class NotFound(common.NotFound, StoreError):
    """No copy of the file on this SE."""


class Quarantined(common.NotFound, StoreError):
    """The copy was moved aside while the change waited for it."""


class Deleted(common.FileGone, StoreError):
    """The file is a tombstone: it cannot change any more."""


class NoSpace(common.StorageFull, StoreError):
    """Not enough room for the bytes announced or received."""


class Collision(common.Conflict, StoreError):
    """The id (or the storage path) is taken: publishing never overwrites."""


class NameTooLong(common.ValidationFailed, StoreError):
    """The file system refused a name as too long (ENAMETOOLONG)."""


class ModeChanged(common.ModeNotAllowed, StoreError):
    """The mode changed while the write was in flight: it is undone, never acknowledged."""
