"""Redis feeds: the event schema, consumers, publisher helpers and the simulator."""
