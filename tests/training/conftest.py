"""Fixtures shared by the run-directory tests: a finished tiny run, and a fresh copy of it."""

import shutil

import pytest

from behavior_priors.training.run import train


@pytest.fixture(scope="module")
def finished(request, tmp_path_factory):
    """A finished run of the test module's ``TINY`` config (trained once per module)."""
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    train(request.module.TINY, run_dir)
    return run_dir


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of :func:`finished` that a test may damage."""
    run_dir = tmp_path / "copy"
    shutil.copytree(finished, run_dir)
    return run_dir
