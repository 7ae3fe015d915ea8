"""Every periodic task, in one place. Each entry has `expires` so a backlog never piles up.

Add entries here (one per periodic task); the task itself lives in its domain's `tasks.py`.
"""

BEAT_SCHEDULE: dict[str, dict] = {}
