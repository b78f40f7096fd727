"""Which catalog errors are about one row's data: the shared classifier
(:mod:`artstore.common.dberrors`), named here for the SE's catalog code."""

from __future__ import annotations

from artstore.common.dberrors import is_data_error, safe_reason

__all__ = ["is_data_error", "safe_reason"]
