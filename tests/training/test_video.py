"""Videos: the camera a MuJoCo video is rendered from, and one-line errors for what cannot be
rendered (a camera with the schematic, an unknown camera, Gymnasium frames without pygame)."""

import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from behavior_priors.envs.mujoco import RenderingUnavailableError
from behavior_priors.envs.registry import make
from behavior_priors.training import video

ROOT = Path(__file__).resolve().parents[2]
SIZE = (32, 24)


@pytest.fixture
def arena(monkeypatch):
    """A point-mass environment whose render() records its keyword arguments instead of
    drawing (no OpenGL needed), with the process's "GL failed" memory cleared."""
    monkeypatch.setattr(video, "_GL_FAILED", False)
    env = make("pointmass-gtt3", 1, seed=0)
    env.calls = []

    def render(index=0, camera="top", width=320, height=240):
        env.view(camera, width, height)  # the real check of the name
        env.calls.append(camera)
        return np.zeros((height, width, 3), np.uint8)

    env.render = render
    return env


def test_the_camera_reaches_the_renderer_and_the_default_is_the_environments(arena):
    draw, used = video._frame_function(arena, "mujoco", SIZE, camera="track")
    assert used == "mujoco" and draw([]).shape == (24, 32, 3)
    assert arena.calls == ["track", "track"]
    arena.calls.clear()
    draw, _ = video._frame_function(arena, "auto", SIZE)
    draw([])
    assert arena.calls == ["top", "top"]  # render()'s default: the fitted overhead view


def test_a_camera_with_the_schematic_is_refused_in_one_line(arena):
    """Before: the schematic ignored any camera silently (it had no camera option at all)."""
    with pytest.raises(ValueError) as e:
        video._frame_function(arena, "schematic", SIZE, camera="track")
    assert "always drawn from above" in str(e.value) and "\n" not in str(e.value)
    assert arena.calls == []


def test_an_unknown_camera_is_refused_before_anything_renders(arena):
    arena.render = lambda *a, **k: pytest.fail("rendered with an unknown camera")
    with pytest.raises(ValueError, match=r"unknown camera 'nosuch'; cameras: 'top', 'track'"):
        video._frame_function(arena, "auto", SIZE, camera="nosuch")
    assert video._GL_FAILED is False  # a wrong name is not a missing OpenGL


def test_a_camera_without_opengl_says_why_instead_of_drawing_a_schematic(arena):
    def no_gl(index=0, camera="top", width=320, height=240):
        raise RenderingUnavailableError("no OpenGL here")

    arena.render = no_gl
    with pytest.raises(ValueError, match=r"camera='track' needs MuJoCo frames.*no OpenGL here"):
        video._frame_function(arena, "auto", SIZE, camera="track")
    # Without a camera the same machine gets the schematic, as before.
    video._GL_FAILED = False
    _, used = video._frame_function(arena, "auto", SIZE)
    assert used == "schematic"


def test_adapted_environments_have_no_camera_to_choose():
    env = make("gymnasium:Pendulum-v1", 1, seed=0)
    with pytest.raises(ValueError, match="no cameras to choose from"):
        video._frame_function(env, "auto", SIZE, camera="top")


def _extra_named_in(message: str) -> str:
    return message.split("'behavior-priors[", 1)[1].split("]'", 1)[0]


def test_gymnasium_frames_without_pygame_name_the_extra(monkeypatch):
    """Before: Gymnasium's DependencyNotInstalled, wrapped in "render() failed ... no arena
    snapshot()", which named gymnasium's extra, not ours."""
    monkeypatch.setattr(video, "_GL_FAILED", False)
    monkeypatch.setitem(sys.modules, "pygame", None)  # `import pygame` raises ImportError
    env = make("gymnasium:CartPole-v1", 1, seed=0)
    with pytest.raises(ImportError) as e:
        video._frame_function(env, "auto", (320, 240))
    message = str(e.value)
    assert "\n" not in message and "pygame" in message
    assert "pip install 'behavior-priors[classic-control]'" in message
    assert video._GL_FAILED is False  # a missing package is not a missing OpenGL
    # The extra exists and brings pygame (through Gymnasium's own classic-control extra).
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(r.startswith("gymnasium[classic-control]") for r in extras[_extra_named_in(message)])
