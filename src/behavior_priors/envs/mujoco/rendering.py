"""Off-screen rendering with ``mujoco.Renderer``, headless-friendly.

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when ``mujoco`` is first imported:
``egl`` (GPU or Mesa EGL, needs ``libegl1``) or ``osmesa`` (software, needs ``libosmesa6``)
work without a display; ``glfw`` (the default) needs one. Set it before anything imports
``mujoco``, e.g. ``MUJOCO_GL=egl python train.py``.
"""

from __future__ import annotations

import os

import mujoco

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
