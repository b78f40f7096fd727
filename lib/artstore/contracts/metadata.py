"""The one ``MetaData`` every table of the migrations is declared on (each ``Table``
names its schema). ``artstore.contracts.tables.metadata`` is it with every table loaded."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
