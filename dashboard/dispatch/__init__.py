"""Dispatch and routing of incidents to departments: the board's transitions, the desk, the commander, deadlines."""
