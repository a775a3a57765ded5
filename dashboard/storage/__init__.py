"""SQL storage: engine and migrations, the tables, the event store, queries, users and the wiring of services."""
