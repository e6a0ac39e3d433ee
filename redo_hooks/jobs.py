"""The RQ entry point of lane jobs: ``redo_hooks.jobs.run_lane``.

RQ stores a job's function by dotted name in the job hash, and hashes
written by any release of redo-hooks name this one; it stays here so that
jobs queued before an upgrade still run after it, and jobs queued by a newer
receiver run on an older worker during a rolling deploy. The work is done in
:mod:`redo_hooks.dispatch.lanes`.
"""

from __future__ import annotations

from .dispatch.lanes import run_lane

__all__ = ["run_lane"]
