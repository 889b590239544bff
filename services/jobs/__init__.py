"""Generation jobs: the life cycle on history rows, and the runners that run them.

- :mod:`.lifecycle`: claim, lease, steps, cancel, re-queue and recovery of a job's row;
- :mod:`.owner`, :mod:`.heartbeat`: who runs a job, and how it says it is alive;
- :mod:`.local`: the runner inside ``dgx-music serve`` (and ``worker``) on SQLite;
- :mod:`.queue`: the Procrastinate app and task on PostgreSQL;
- :mod:`.recovery`: the sweep that re-runs or fails jobs whose runner died;
- :mod:`.events`: change notices for progress streams.

The job itself is :func:`services.pipeline.run_generation`, whoever runs it.
Nothing is imported until used.
"""
