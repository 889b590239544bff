"""``/healthz`` (is the service usable?) and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ..schemas import Health

__all__ = ["router"]

router = APIRouter(tags=["operations"])

# Upper bounds of the job duration histogram, seconds (start of the last run to the end).
DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def health(request: Request):
    """200 when the database and the queue answer; 503 (with what is wrong) otherwise."""
    dispatcher = request.app.state.dispatcher
    report = dispatcher.health()
    ok = report["database"] == "ok" and report["queue"] == "ok"
    body = {"status": "ok" if ok else "unavailable", **report, "runner": dispatcher.mode,
            "workers": dispatcher.workers}
    return JSONResponse(body, status_code=200 if ok else 503)


def _duration_expression(dialect: str):
    from sqlalchemy import func

    from ...storage import Generation

    if dialect == "postgresql":
        return func.extract("epoch", Generation.completed_at - Generation.started_at)
    return (func.julianday(Generation.completed_at) - func.julianday(Generation.started_at)) * 86400.0


def _job_figures(request: Request):
    from sqlalchemy import case, func, select

    from ...storage import Generation, get_session

    with get_session(request.app.state.database_url, readonly=True) as session:
        counts = dict(session.execute(select(Generation.status, func.count()).group_by(Generation.status)).all())
        duration = _duration_expression(session.get_bind().dialect.name)
        finished = (Generation.status == "completed") & Generation.started_at.is_not(None)
        columns = [func.sum(case((duration <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
        row = session.execute(
            select(func.count(), func.sum(duration), *columns).select_from(Generation).where(finished)
        ).one()
    return {str(getattr(k, "value", k)): int(v) for k, v in counts.items()}, row


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request):
    """Jobs by status, queue depth, running jobs and the job duration histogram."""
    counts, row = _job_figures(request)
    total, total_seconds, *cumulative = row
    lines = [
        "# HELP dgx_music_jobs Generation jobs in the history, by status.",
        "# TYPE dgx_music_jobs gauge",
        *[f'dgx_music_jobs{{status="{status}"}} {counts.get(status, 0)}' for status in _STATUSES],
        "# HELP dgx_music_queue_depth Jobs waiting to run.",
        "# TYPE dgx_music_queue_depth gauge",
        f"dgx_music_queue_depth {counts.get('pending', 0)}",
        "# HELP dgx_music_running_jobs Jobs running in this process.",
        "# TYPE dgx_music_running_jobs gauge",
        f"dgx_music_running_jobs {request.app.state.dispatcher.running_jobs()}",
        "# HELP dgx_music_job_duration_seconds Time from the start of a completed job's last run to its end.",
        "# TYPE dgx_music_job_duration_seconds histogram",
    ]
    for bound, count in zip(DURATION_BUCKETS, cumulative):
        lines.append(f'dgx_music_job_duration_seconds_bucket{{le="{bound:g}"}} {int(count or 0)}')
    lines += [
        f'dgx_music_job_duration_seconds_bucket{{le="+Inf"}} {int(total or 0)}',
        f"dgx_music_job_duration_seconds_sum {float(total_seconds or 0.0):.6f}",
        f"dgx_music_job_duration_seconds_count {int(total or 0)}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")
