"""The tamper-evident audit log: a hash chain (``chain``, pure) kept in a database (``store``)."""
