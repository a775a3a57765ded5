"""The processes that wire everything together: the app factory, the ingest worker and the embedded default."""
