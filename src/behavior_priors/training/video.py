"""Videos of a trained policy, or of its prior acting alone.

Two kinds of frames:

* ``"mujoco"``: RGB frames from ``mujoco.Renderer``; for the native suite by default from
  above, fitted to the arena (``camera="top"``; ``"track"`` follows the body from behind, see
  :meth:`MujocoTaskEnv.view`); needs an OpenGL backend (``MUJOCO_GL=egl`` or ``osmesa`` on a
  headless machine, see :mod:`behavior_priors.envs.mujoco.rendering`). Adapted environments
  (Gymnasium, dm_control) draw their own frames;
* ``"schematic"``: a top-down drawing of the arena (walls, targets, boxes, the body and its
  trail) made with matplotlib from :meth:`MujocoTaskEnv.snapshot`; needs no OpenGL, and has no
  camera to choose.

``renderer="auto"`` uses MuJoCo when a GL context can be made and the schematic otherwise, and
says which it used. Files are GIF (imageio + Pillow) or MP4 (needs ``imageio-ffmpeg``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np

from behavior_priors.agents.svg0 import initial_actor_state
from behavior_priors.envs.base import Env
from behavior_priors.training.acting import make_actor
from behavior_priors.training.actions import ActionLayout

Renderer = Literal["auto", "mujoco", "schematic"]
_GL_FAILED = False


def record(
    run: Any,
    env: Env,
    num_steps: int,
    seed: int = 0,
    use_prior: bool = False,
    deterministic: bool | None = None,
    renderer: Renderer = "auto",
    size: tuple[int, int] = (320, 240),
    camera: str | int | None = None,
) -> tuple[list[np.ndarray], str, dict[str, float]]:
    """Roll out copy 0 of ``env`` for ``num_steps`` control steps and render every step.

    Args:
      run: a :class:`~behavior_priors.training.run.LoadedRun`.
      env: a MuJoCo task environment with one copy.
      use_prior: act with the behaviour prior instead of the policy.
      deterministic: act with the means (default: True for the policy, False for the prior,
        whose interest is the behaviour it samples).
      renderer: see the module docstring.
      size: ``(width, height)`` in pixels.
      camera: the MuJoCo view of a native-suite environment: ``"top"`` (its default, fitted to
        the arena), ``"track"``, or another camera of the model by name or id. None: the
        environment's default. A camera with schematic frames is a ``ValueError`` (the
        schematic is always top-down), as is an unknown one (before any rendering).

    Returns:
      ``(frames [H, W, 3] uint8, renderer used, {"return", "successes", "episodes"})``.
    """
    if deterministic is None:
        deterministic = not use_prior
    agent = run.config.agent
    act = make_actor(agent, deterministic=deterministic, use_prior=use_prior)
    module = run.state.networks if use_prior else run.state.networks.policy
    actions = ActionLayout.from_spec(env.action_spec())
    state = initial_actor_state(agent, env.num_envs)
    key = jax.random.PRNGKey(seed)
    ts = env.reset(seed)
    draw, used = _frame_function(env, renderer, size, camera)
    trail: list[np.ndarray] = []
    frames = [draw(trail)]
    total, successes, episodes = 0.0, 0, 0
    for _ in range(num_steps):
        a, _, state, key = act(module, ts.observation, ts.first(), state, key)
        ts = env.step(actions.to_env(a))
        total += float(ts.reward[0])
        if ts.first()[0]:
            trail.clear()
        if ts.last()[0]:
            episodes += 1
            successes += int(bool(ts.info.get("success", [False])[0]))
        frames.append(draw(trail))
    return frames, used, {"return": total, "successes": successes, "episodes": episodes}


def _frame_function(
    env: Env, renderer: Renderer, size: tuple[int, int], camera: str | int | None = None
) -> tuple[Callable[[list], np.ndarray], str]:
    width, height = size
    global _GL_FAILED
    render_error = None
    kwargs = {} if camera is None else {"camera": camera}
    if camera is not None:
        _check_camera(env, renderer, camera, size)
    if renderer == "auto" and not _renders_frames(env):
        renderer = "schematic"  # e.g. the grid world's render() draws text
    if renderer == "mujoco" or (renderer == "auto" and not _GL_FAILED):
        try:
            env.render(0, width=width, height=height, **kwargs)
            return (lambda _trail: env.render(0, width=width, height=height, **kwargs)), "mujoco"
        except ImportError:
            raise  # a missing package (pygame for Gymnasium's classic control): its own message
        except Exception as e:
            # A second failed GL start in one process can abort it: remember the failure.
            _GL_FAILED = True
            if renderer == "mujoco":
                raise
            render_error = e
    if camera is not None:
        # Frames from another view than the one asked for would mislead: say why instead.
        why = (
            f"rendering failed ({type(render_error).__name__}: {render_error})"
            if render_error is not None
            else "rendering failed earlier in this process (no GL backend?)"
        )
        raise ValueError(
            f"camera={camera!r} needs MuJoCo frames, but {why}; without a camera the video "
            "falls back to the top-down schematic"
        )
    if not hasattr(env, "snapshot"):
        if not _renders_frames(env):
            raise ValueError(
                f"{type(env).__name__} has neither render(index, width=, height=) frames nor "
                "an arena snapshot()"
            )
        if render_error is not None:
            raise ValueError(
                f"{type(env).__name__}.render() failed ({type(render_error).__name__}: "
                f"{render_error}) and it has no arena snapshot() for a schematic"
            )
        raise ValueError(
            f"rendering failed earlier in this process (no GL backend?) and "
            f"{type(env).__name__} has no arena snapshot() for a schematic"
        )
    return (lambda trail: schematic_frame(env.snapshot(0), trail, size)), "schematic"


def _check_camera(env: Env, renderer: Renderer, camera: str | int, size: tuple[int, int]) -> None:
    """A clear ``ValueError`` for a camera that cannot be honoured, before anything renders."""
    if renderer == "schematic":
        raise ValueError(
            f"camera={camera!r} chooses a MuJoCo view, but the schematic is always drawn from "
            "above; drop the camera, or render with MuJoCo (renderer 'mujoco' or 'auto')"
        )
    view = getattr(env, "view", None)
    if not callable(view):
        raise ValueError(
            f"{type(env).__name__} has no cameras to choose from: a camera is chosen only for "
            "the native MuJoCo suite (adapted environments draw their own frames)"
        )
    view(camera, *size)  # an unknown camera: ValueError naming the valid ones


def _renders_frames(env: Env) -> bool:
    """Whether ``env.render`` draws RGB frames (``render(index, width=, height=)``), not text."""
    render = getattr(env, "render", None)
    if not callable(render):
        return False
    try:
        params = inspect.signature(render).parameters
    except (TypeError, ValueError):
        return False
    return "width" in params and "height" in params


def schematic_frame(
    snap: dict[str, Any], trail: list[np.ndarray], size: tuple[int, int] = (320, 240)
) -> np.ndarray:
    """A top-down RGB frame ``[H, W, 3]`` of an arena snapshot; appends the body to ``trail``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    trail.append(np.asarray(snap["body_xy"]))
    w, h = size
    fig = plt.figure(figsize=(w / 80, h / 80), dpi=80)
    ax = fig.add_axes((0, 0, 1, 0.9))
    half = snap["half_size"]
    ax.add_patch(Rectangle((-half, -half), 2 * half, 2 * half, fill=False, lw=3, color="0.3"))
    colours = plt.get_cmap("tab10").colors
    for k, (x, y) in enumerate(snap["targets"]):
        ax.add_patch(Circle((x, y), snap["target_radius"], color=colours[k % 10], alpha=0.5))
        ax.text(x, y, str(k), ha="center", va="center", fontsize=7)
    b = snap["box_half"]
    for x, y in snap["boxes"]:
        ax.add_patch(Rectangle((x - b, y - b), 2 * b, 2 * b, color="saddlebrown", alpha=0.8))
    path = np.array(trail)
    ax.plot(path[:, 0], path[:, 1], color="0.5", lw=1)
    x, y = snap["body_xy"]
    r = 0.3 * snap["body_scale"]
    ax.add_patch(Circle((x, y), r, color="black"))
    ax.plot(
        [x, x + 2 * r * np.cos(snap["heading"])], [y, y + 2 * r * np.sin(snap["heading"])], "r-"
    )
    ax.set_xlim(-half * 1.05, half * 1.05)
    ax.set_ylim(-half * 1.05, half * 1.05)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.text(0.5, 0.95, snap["task"], ha="center", va="center", fontsize=8)
    fig.canvas.draw()
    frame = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return frame


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 20) -> Path:
    """Write frames to ``path`` (``.gif`` or ``.mp4``); clear error if MP4 cannot be written."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        imageio.mimsave(path, frames, duration=1000 / fps, loop=0)
    elif path.suffix == ".mp4":
        try:
            imageio.mimsave(path, frames, fps=fps)
        except Exception as e:  # imageio raises ValueError/ImportError without ffmpeg
            raise RuntimeError(
                f"cannot write {path}: MP4 needs the ffmpeg plugin (pip install imageio-ffmpeg); "
                "or write a .gif"
            ) from e
    else:
        raise ValueError(f"unknown video format {path.suffix!r}; use .gif or .mp4")
    return path
