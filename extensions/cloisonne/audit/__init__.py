"""The tamper-evident audit log: a hash chain and journal format (``chain``, ``events``,
``journal``: pure, imported by workspaces) kept in a database (``store``: SQLAlchemy, service and
operator only)."""
