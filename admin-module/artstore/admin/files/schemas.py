"""API shapes of the files view: the SE's FileMetadata plus ``copies``."""

from __future__ import annotations

from artstore.contracts.files import FileWithCopies

# The admin's files view answers the shared shape as it is.
AdminFile = FileWithCopies
