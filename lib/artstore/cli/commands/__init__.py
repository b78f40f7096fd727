"""Client commands of the ``artstore`` CLI, one module per area."""
