"""The consent dialogue as data and pure functions: no I/O, no imports from bot or storage."""
