"""Briefings: scheduled and on-demand snapshots of the city for leadership (SPEC sections 5-7).

``periods`` (the slots of the cron schedule), ``collect`` (the numbers), ``render`` (images, HTML, PDF),
``store`` (the table, exactly once per slot), ``generate`` (all of it for one slot), ``schedule`` (APScheduler),
``api`` (the HTTP API).
"""
