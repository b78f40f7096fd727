"""The FileStore (``store.filestore``): every durable change of a file, with its locks,
undo and recovery rule. Kept import-free: ``faults`` reads ``store.changes``."""
