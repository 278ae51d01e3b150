"""Rendering, and the views it renders from.

Frames are rendered in subprocesses: MuJoCo picks its GL backend (MUJOCO_GL) once, at import.
What a view keeps in frame is checked without OpenGL: the test projects points through a
pinhole camera built from the view's parameters with MuJoCo's conventions (written out here,
and checked against ``mjv_updateScene`` and, where GL works, against a rendered segmentation).
"""

import inspect
import json
import math
import os
import subprocess
import sys

import mujoco
import numpy as np
import pytest

from behavior_priors.envs.registry import list_envs, make

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


# -- views -------------------------------------------------------------------------------------

MUJOCO_NAMES = [e.name for e in list_envs() if e.factory.startswith("behavior_priors.envs.mujoco")]
SIZE = (320, 240)  # what `behavior-priors video` renders
_DRAWN = np.array([1, 1, 1, 0, 0, 0], np.uint8)  # geom groups MuJoCo draws by default


def _pinhole(env, view, data):
    """``(position [3], forward [3], up [3], tan(fovy / 2))`` of the camera ``view`` (an
    ``MjvCamera`` or a model camera id), from MuJoCo's documented conventions."""
    model = env.model
    if isinstance(view, mujoco.MjvCamera):
        assert view.type == mujoco.mjtCamera.mjCAMERA_FREE
        az, el = math.radians(view.azimuth), math.radians(view.elevation)
        forward = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        up = np.array([-math.sin(el) * math.cos(az), -math.sin(el) * math.sin(az), math.cos(el)])
        position = np.array(view.lookat) - view.distance * forward
        return position, forward, up, math.tan(math.radians(model.vis.global_.fovy) / 2)
    # A model camera looks along its frame's -z, with y up and x to the right.
    frame = data.cam_xmat[view].reshape(3, 3)
    fovy = model.cam_fovy[view]
    return data.cam_xpos[view].copy(), -frame[:, 2], frame[:, 1], math.tan(math.radians(fovy) / 2)


def _project(camera, points, size=SIZE):
    """Normalised image coordinates ``[N, 2]`` (-1..1 is inside the frame) and depths ``[N]``."""
    position, forward, up, tan = camera
    right = np.cross(forward, up)
    v = np.atleast_2d(points) - position
    depth = v @ forward
    aspect = size[0] / size[1]  # the horizontal field of view follows the frame's shape
    xy = np.stack([(v @ right) / (depth * tan * aspect), (v @ up) / (depth * tan)], axis=1)
    return xy, depth


def _box_corners(data, g, size):
    """The 8 corners ``[8, 3]`` of box geom ``g`` in the world frame."""
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    frame = data.geom_xmat[g].reshape(3, 3)
    return data.geom_xpos[g] + (signs * size[g]) @ frame.T


def _missed(env, camera_name, data, size=SIZE):
    """What the view misses in copy 0 now: names of the arena's parts, targets, boxes or the
    body that project outside the frame, and ``"body hidden"`` when the line of sight to the
    body first meets something else (a wall)."""
    model = env.model
    view = env.view(camera_name, *size)
    camera = _pinhole(env, view, data)
    names = [model.geom(g).name for g in range(model.ngeom)]
    points = {}
    for g, name in enumerate(names):
        if (name.startswith("wall_") and name.endswith("_visual")) or name.startswith("box_"):
            points[name] = _box_corners(data, g, model.geom_size)
    r = env.layout.target_radius
    for k in range(env.layout.num_targets):
        centre = data.xpos[model.body(f"target_{k}").id]
        points[f"target_{k}"] = centre + np.array([[r, 0, 0], [-r, 0, 0], [0, r, 0], [0, -r, 0]])
    torso = model.body("torso").id
    points["body"] = data.xpos[torso]
    missed = []
    for name, p in points.items():
        xy, depth = _project(camera, p, size)
        if not ((depth > 0).all() and (np.abs(xy) <= 1).all()):
            missed.append(name)
    hit = np.array([-1], np.int32)
    mujoco.mj_ray(model, data, camera[0], data.xpos[torso] - camera[0], _DRAWN, 1, -1, hit)
    first = int(hit[0])
    if first < 0:
        missed.append("body not hit")
    elif model.body_rootid[model.geom_bodyid[first]] != torso:
        missed.append(f"body hidden by {names[first] or f'geom {first}'}")
    return missed


def _drive_into_wall(env, steps=100):
    """Steps of copy 0 with the first actuator at -1 (the point mass's x force)."""
    action = np.zeros((1, *env.action_spec().shape), np.float32)
    action[0, 0] = -1.0
    for _ in range(steps):
        env.step(action)
        yield env.data(0)


def test_the_pinhole_model_is_mujocos():
    """The test's camera frames equal MuJoCo's own (``mjv_updateScene``, no GL; an image
    without stereo is seen from the mean of the two eyes)."""
    env = make("pointmass-movebox", 1, seed=0)
    data = env.data(0)
    for name in ("top", "track"):
        view = env.view(name, *SIZE)
        if not isinstance(view, mujoco.MjvCamera):
            fixed = mujoco.MjvCamera()
            fixed.type, fixed.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, view
            free = fixed
        else:
            free = view
        scene = mujoco.MjvScene(env.model, maxgeom=1000)
        mujoco.mjv_updateScene(
            env.model,
            data,
            mujoco.MjvOption(),
            mujoco.MjvPerturb(),
            free,
            mujoco.mjtCatBit.mjCAT_ALL,
            scene,
        )
        eyes = scene.camera
        position, forward, up, tan = _pinhole(env, view, data)
        np.testing.assert_allclose((eyes[0].pos + eyes[1].pos) / 2, position, atol=1e-5)
        np.testing.assert_allclose(eyes[0].forward, forward, atol=1e-6)
        np.testing.assert_allclose(eyes[0].up, up, atol=1e-6)
        assert eyes[0].frustum_top / eyes[0].frustum_near == pytest.approx(tan, rel=1e-5)
        assert eyes[0].frustum_width == 0  # the horizontal extent follows the frame's aspect


@pytest.mark.parametrize("name", MUJOCO_NAMES)
def test_the_default_view_keeps_arena_targets_boxes_and_body_in_frame(name):
    """Before: the default camera was "track" (behind the body), which misses the arena behind
    it at every step and can lose the body behind a wall (next test)."""
    env = make(name, 1, seed=0)
    default = inspect.signature(env.render).parameters["camera"].default
    assert default == "top"
    rng = np.random.default_rng(0)
    spec = env.action_spec()
    for _ in range(100):
        env.step(rng.uniform(spec.minimum, spec.maximum, (1, *spec.shape)).astype(np.float32))
        for size in (SIZE, (SIZE[1], SIZE[0])):  # landscape and portrait frames
            assert _missed(env, default, env.data(0), size) == [], size
    for data in _drive_into_wall(env, 60):  # the body against a wall
        assert _missed(env, default, data) == []


def test_the_tracking_camera_loses_the_body_behind_the_wall():
    """The issue's video: driven into the -x wall, the point mass disappears behind the wall
    for the tracking camera; the default view keeps it (and everything else) in frame."""
    env = make("pointmass-gtt3", 1, seed=0)
    hidden_from = None
    for t, data in enumerate(_drive_into_wall(env)):
        missed = _missed(env, "track", data)
        assert "wall_1_visual" in missed  # the wall behind the camera: never in frame
        if hidden_from is None and any(m.startswith("body hidden by wall") for m in missed):
            hidden_from = t
        assert _missed(env, "top", data) == []
    assert hidden_from is not None and hidden_from < 100


def test_unknown_camera_is_one_line_naming_the_valid_ones():
    env = make("ant-gtt3", 1, seed=0)
    assert env.cameras == ("top", "track")
    assert env.view("track") == env.model.camera("track").id
    assert env.view(1) == 1
    for bad in ("nosuch", 7, -1):
        with pytest.raises(ValueError) as e:
            env.view(bad)
        message = str(e.value)
        assert "\n" not in message and "'top'" in message and "'track'" in message
        assert f"unknown camera {bad!r}" in message and "0..1" in message


_SEGMENT = """
import json, sys
import mujoco, numpy as np
from behavior_priors.envs.mujoco.rendering import make_renderer, RenderingUnavailableError
from behavior_priors.envs.registry import make
env = make("pointmass-gtt3", 1, seed=0)
action = np.zeros((1, 2), np.float32); action[0, 0] = -1.0
for _ in range(100):
    env.step(action)
model, data = env.model, env.data(0)
try:
    renderer = make_renderer(model, width=320, height=240)
except RenderingUnavailableError as err:
    print("UNAVAILABLE", err); sys.exit(0)
renderer.enable_segmentation_rendering()
out = {}
for name in ("top", "track"):
    renderer.update_scene(data, camera=env.view(name, 320, 240))
    ids, kinds = np.moveaxis(renderer.render(), -1, 0)
    geoms = kinds == mujoco.mjtObj.mjOBJ_GEOM
    body = geoms & (model.geom_bodyid[np.where(geoms, ids, 0)] == model.body("torso").id)
    rows, cols = np.nonzero(body)
    out[name] = {
        "body_pixels": int(body.sum()),
        "body_centre": [float(cols.mean() + 0.5), float(rows.mean() + 0.5)] if body.any() else None,
        "geoms": sorted({model.geom(int(g)).name for g in np.unique(ids[geoms])}),
    }
renderer.close()
print("OK", json.dumps(out))
"""


def test_rendered_frames_agree_with_the_projection():
    """Where OpenGL works: the body is drawn where the pinhole model puts it in the top view,
    with all four walls; the tracking camera draws no pixel of it (hidden by the wall)."""
    reasons = []
    for gl in ("egl", "osmesa"):
        proc = subprocess.run(
            [sys.executable, "-c", _SEGMENT],
            env={**os.environ, "MUJOCO_GL": gl},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode == 0 and proc.stdout.startswith("OK"):
            break
        reasons.append(f"{gl}: {(proc.stdout + proc.stderr).strip().splitlines()[-1][:200]}")
    else:
        pytest.skip("no headless GL backend (install libegl1 or libosmesa6): " + "; ".join(reasons))
    seen = json.loads(proc.stdout.split(" ", 1)[1])
    env = make("pointmass-gtt3", 1, seed=0)
    data = list(_drive_into_wall(env))[-1]
    camera = _pinhole(env, env.view("top", *SIZE), data)
    xy, _ = _project(camera, data.xpos[env.model.body("torso").id])
    x, y = xy[0]
    pixel = [(x + 1) / 2 * SIZE[0], (1 - y) / 2 * SIZE[1]]
    assert seen["top"]["body_pixels"] > 20
    np.testing.assert_allclose(seen["top"]["body_centre"], pixel, atol=2.0)
    assert {f"wall_{i}_visual" for i in range(4)} <= set(seen["top"]["geoms"])
    assert seen["track"]["body_pixels"] == 0
