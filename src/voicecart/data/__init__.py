"""Dataset adapters: each turns one real source into the canonical tables, and nothing else."""

from voicecart.data.errors import DataError
from voicecart.data.store import CanonicalTables, connect, load_dataset, read_manifest, write_dataset

__all__ = ["CanonicalTables", "DataError", "connect", "load_dataset", "read_manifest", "write_dataset"]
