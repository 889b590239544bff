"""Shared fixtures."""

from __future__ import annotations

import os

import pytest

from hypothesis import HealthCheck, settings

from services.audio import _native

BUILT_KERNELS = _native.kernels

# Property tests draw few, cheap examples so the suite stays fast; HYPOTHESIS_PROFILE=thorough
# draws many more (for a run by hand). No deadline: two shared cores make timings noisy.
settings.register_profile("ci", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=["compiled", "numpy"])
def implementation(request, monkeypatch):
    """Run a test once on the compiled inner loops and once on the NumPy fallback that
    installs without a C compiler use (``services.audio._native.kernels`` set to None)."""
    if request.param == "compiled":
        if BUILT_KERNELS is None:
            pytest.skip("the C extension services.audio._kernels was not built")
        monkeypatch.setattr(_native, "kernels", BUILT_KERNELS)
    else:
        monkeypatch.setattr(_native, "kernels", None)
    return request.param


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    """Under ``--cov``, coverage's subprocess support (``patch = ["subprocess"]`` in
    pyproject.toml) exports COVERAGE_PROCESS_CONFIG, and every Python process started with
    it measures itself from start-up. pytest-cov already measures the xdist workers and
    saves their data before the controller combines it; a second, start-up measurement in
    each worker would only add tracing and save at the worker's exit, which can come after
    the combination (a stray ``.coverage.*`` file). So the workers start without it; each
    worker's own coverage exports it again for the subprocesses its tests start."""
    os.environ.pop("COVERAGE_PROCESS_CONFIG", None)


# Tests that start services (servers, workers, a browser): most of the suite's time.
SERVICE_TESTS = ("tests/web/", "tests/integration/test_service.py", "tests/integration/test_workers.py",
                 "tests/integration/test_schemathesis.py", "tests/integration/test_cli_jobs.py")


def pytest_collection_modifyitems(config, items):
    """Slow tests first (the order is otherwise kept): under ``-n 2 --dist worksteal`` a
    slow test then runs beside the many short ones, which the other worker takes over,
    instead of ending the run alone.

    Inside the run of the spec's coverage command that ``tests/integration/
    test_spec_commands.py`` starts (``DGX_MUSIC_INSIDE_SPEC_COMMAND=1``), the tests that
    start services are left out: they measure nothing of ``services.audio``, which that
    command reports, and would double the suite's time in CI. A user's own run of the
    command runs them all."""
    if os.environ.get("DGX_MUSIC_INSIDE_SPEC_COMMAND") == "1":
        kept = [item for item in items if not item.nodeid.startswith(SERVICE_TESTS)]
        deselected = [item for item in items if item.nodeid.startswith(SERVICE_TESTS)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = kept
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
