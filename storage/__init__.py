"""Durable state: SQLModel tables, session-passing queries, the Redis or in-process store."""
