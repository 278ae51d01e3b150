"""Off-screen rendering with ``mujoco.Renderer``, headless-friendly.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when ``mujoco`` is first imported:
``egl`` (GPU or Mesa EGL, needs ``libegl1``) or ``osmesa`` (software, needs ``libosmesa6``)
work without a display; ``glfw`` (the default) needs one. Set it before anything imports
``mujoco``, e.g. ``MUJOCO_GL=egl python train.py``.

:func:`top_view` is the default view of the arena: a free camera straight above its centre,
far enough up that the walls (and so the body, targets and boxes inside them) fill the frame
whatever its aspect ratio.
"""

from __future__ import annotations

import math
import os

import mujoco
import numpy as np

_HOW_TO = (
    "MuJoCo could not create an OpenGL context for off-screen rendering "
    "(MUJOCO_GL={gl!r}). On a headless Linux machine either install Mesa's software "
    "renderer (`apt-get install libosmesa6`) and run with MUJOCO_GL=osmesa, or use EGL "
    "(`apt-get install libegl1`, with a GPU driver or Mesa) and MUJOCO_GL=egl. The variable "
    "must be set before `mujoco` is first imported. Cause: {err}"
)


class RenderingUnavailableError(RuntimeError):
    """No OpenGL backend could be started; the message says what to install and set."""


def make_renderer(model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    """A ``mujoco.Renderer`` for ``model``, or :class:`RenderingUnavailableError`."""
    renderer_cls = getattr(mujoco, "Renderer", None)
    if renderer_cls is None:
        raise RenderingUnavailableError(
            _HOW_TO.format(gl=os.environ.get("MUJOCO_GL"), err="mujoco.Renderer is missing")
        )
    try:
        return renderer_cls(model, height=height, width=width)
    except ValueError:
        raise  # a size above the model's off-screen buffer: MuJoCo's message is clear
    except Exception as err:  # the GL libraries raise many types (ImportError, OSError, ...)
        raise RenderingUnavailableError(
            _HOW_TO.format(gl=os.environ.get("MUJOCO_GL"), err=f"{type(err).__name__}: {err}")
        ) from err


def top_view(
    half_width: float, top: float, fovy: float, aspect: float, margin: float = 0.05
) -> mujoco.MjvCamera:
    """A free camera looking straight down at the origin that frames an arena.

    MuJoCo's free camera sits at ``lookat - distance * forward`` with ``forward = (cos(el)
    cos(az), cos(el) sin(az), sin(el))``; at elevation -90 that is ``(0, 0, distance)`` looking
    down, and azimuth 90 puts world +y at the top of the image and +x to the right (as the
    schematic draws it). Its vertical field of view is ``model.vis.global_.fovy``; the
    horizontal one follows the frame's aspect ratio. A point at height ``z`` and horizontal
    offset ``r`` along an image axis is in frame when ``r <= (distance - z) * tan(fovy / 2)``
    (times ``aspect`` horizontally), so the narrower side and the highest point decide.

    Args:
      half_width: half-width of the square to frame (the walls' outer faces), metres.
      top: height of its highest point (the walls' tops), metres.
      fovy: vertical field of view, degrees.
      aspect: frame width / height.
      margin: extra fraction of ``half_width`` left around the square.

    Returns:
      A ``mujoco.MjvCamera`` for ``mujoco.Renderer.update_scene(data, camera=...)``.
    """
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.lookat[:] = 0.0
    camera.azimuth = 90.0
    camera.elevation = -90.0
    tan = math.tan(math.radians(fovy) / 2) * min(1.0, aspect)
    camera.distance = top + (1.0 + margin) * half_width / tan
    return camera


def arena_extent(model: mujoco.MjModel, prefix: str = "wall_") -> tuple[float, float]:
    """``(half_width, top)`` of the axis-aligned box around the geoms named ``prefix*`` that
    are drawn (visual group 0-2 and not transparent): the arena's walls, as built."""
    half_width, top = 0.0, 0.0
    for g in range(model.ngeom):
        name = model.geom(g).name
        if not name.startswith(prefix) or model.geom_group[g] > 2 or model.geom_rgba[g, 3] == 0:
            continue
        # Walls are boxes aligned with the world axes: the half-sizes are the extents.
        pos, size = model.geom_pos[g], model.geom_size[g]
        half_width = max(half_width, float(np.max(np.abs(pos[:2]) + size[:2])))
        top = max(top, float(pos[2] + size[2]))
    if half_width == 0.0:
        raise ValueError(f"the model has no drawn geoms named {prefix}*")
    return half_width, top
