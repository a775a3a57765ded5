"""The bottom layer: configuration, the city pack and its rules, clock, roles, errors, Redis names, text and the message shapes."""
