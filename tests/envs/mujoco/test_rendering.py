"""Rendering runs in subprocesses: MuJoCo picks its GL backend (MUJOCO_GL) once, at import."""

import os
import subprocess
import sys

import pytest

_SCRIPT = """
import numpy as np
from behavior_priors.envs.mujoco import RenderingUnavailableError, make_task_env
env = make_task_env(2, seed=0, body="ant", tasks=["move_box:0:0"])
try:
    track = env.render(1, camera="track", width=64, height=48)
    top = env.render(0, camera="top", width=32, height=32)
except RenderingUnavailableError as err:
    print("UNAVAILABLE", err)
else:
    assert track.shape == (48, 64, 3) and track.dtype == np.uint8, track.shape
    assert top.shape == (32, 32, 3)
    assert track.std() > 5, "a blank frame"
    print("OK")
env.close()
"""


def _run(gl: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": gl}
    if gl == "glfw":
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )


def test_renders_rgb_frames_headless():
    reasons = []
    for gl in ("egl", "osmesa"):
        proc = _run(gl)
        if proc.returncode == 0 and proc.stdout.startswith("OK"):
            return
        if proc.returncode == 0:  # RenderingUnavailableError: no such backend here
            reasons.append(f"{gl}: {proc.stdout.strip()[:200]}")
        elif "AssertionError" in proc.stderr:
            pytest.fail(proc.stderr[-2000:])
        else:  # MuJoCo fails at import when the backend's library is missing
            reasons.append(f"{gl}: {proc.stderr.strip().splitlines()[-1][:200]}")
    pytest.skip("no headless GL backend (install libegl1 or libosmesa6): " + "; ".join(reasons))


def test_no_backend_gives_an_error_that_says_what_to_install():
    proc = _run("glfw")  # GLFW needs a display, which this subprocess does not have
    if proc.stdout.startswith("OK"):
        pytest.skip("GLFW rendered without a display on this machine")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "UNAVAILABLE" in proc.stdout
    assert "libosmesa6" in proc.stdout and "MUJOCO_GL=egl" in proc.stdout
