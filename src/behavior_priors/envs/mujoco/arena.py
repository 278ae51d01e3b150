"""A walled square arena with K targets and M boxes, built with ``mujoco.MjSpec``.

Targets are mocap bodies, so that each of the B copies (one ``MjData`` each, one shared
``MjModel``) can place them differently; they carry a visual disc only and never collide.
Boxes are free bodies. The arena's half-width grows with the number of objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from behavior_priors.envs.mujoco.bodies import BOX_BITS, FLOOR_BITS, SOLID_BITS

_G = mujoco.mjtGeom
_S = mujoco.mjtSensor
_O = mujoco.mjtObj

TARGET_COLORS = [
    [0.2, 0.8, 0.2, 0.5],
    [0.2, 0.4, 0.9, 0.5],
    [0.9, 0.8, 0.1, 0.5],
    [0.8, 0.2, 0.8, 0.5],
    [0.1, 0.8, 0.8, 0.5],
]


@dataclass(frozen=True)
class ArenaLayout:
    """Sizes of one arena, all in metres (already multiplied by the body's scale).

    Attributes:
      half_size: half-width of the square floor inside the walls.
      num_targets: K targets (mocap bodies ``target_{k}``).
      num_boxes: M boxes (free bodies ``box_{m}``).
      box_half: half-size of each box edge.
      box_mass: mass of each box, kg.
      target_radius: radius of the target disc (also the tolerance of "at target").
      wall_height: height of the walls.
    """

    half_size: float
    num_targets: int
    num_boxes: int
    box_half: float
    box_mass: float
    target_radius: float
    wall_height: float

    @staticmethod
    def for_scale(
        scale: float,
        num_targets: int,
        num_boxes: int,
        box_mass_factor: float = 1.0,
        base_half_size: float = 2.0,
        half_size_per_object: float = 0.75,
    ) -> ArenaLayout:
        """The default layout for a body of size ``scale``: the paper's Ant room at scale 1.

        The half-width is ``scale * (base + per_object * (K + M))``; boxes have half-size
        ``0.5 * scale`` and mass ``1.5 * scale**3 * box_mass_factor`` (1.5 kg at Ant scale).
        """
        return ArenaLayout(
            half_size=scale * (base_half_size + half_size_per_object * (num_targets + num_boxes)),
            num_targets=num_targets,
            num_boxes=num_boxes,
            box_half=0.5 * scale,
            box_mass=1.5 * scale**3 * box_mass_factor,
            target_radius=0.5 * scale,
            wall_height=1.0 * scale,
        )


def build_arena(
    spec: mujoco.MjSpec, layout: ArenaLayout, touch_pairs: list[tuple[int, int]] = ()
) -> None:
    """Add floor, walls, lights, a top camera, targets and boxes to ``spec``.

    Sensors added: ``box_{m}_pos`` (framepos of each box) and, for each ``(i, j)`` in
    ``touch_pairs``, ``boxes_{i}_{j}_dist`` (signed distance between the two box geoms,
    computed by MuJoCo's collision code, so "touching" is exact whatever the boxes' rotation).
    """
    h = layout.half_size
    tex = spec.add_texture(
        name="grid",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.25, 0.3, 0.35],
        rgb2=[0.3, 0.35, 0.4],
        width=256,
        height=256,
    )
    mat = spec.add_material(name="grid", texrepeat=[2 * h, 2 * h], reflectance=0.1)
    mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
    world = spec.worldbody
    world.add_geom(
        name="floor",
        type=_G.mjGEOM_PLANE,
        size=[h + 0.5 * layout.wall_height, h + 0.5 * layout.wall_height, 0.1],
        material="grid",
        contype=FLOOR_BITS,
        conaffinity=FLOOR_BITS,
    )
    thick = 0.1 * layout.wall_height
    for i, (x, y) in enumerate(((1, 0), (-1, 0), (0, 1), (0, -1))):
        # Each wall collides as a plane (a half-space) through its inner face, facing the
        # arena: the same surface as the box it is drawn as for anything inside the arena,
        # but one cheap plane test per geom instead of box tests whose bounding spheres
        # (the wall's half-length) cover most of the arena. The box is visual only.
        world.add_geom(
            name=f"wall_{i}_visual",
            type=_G.mjGEOM_BOX,
            pos=[x * (h + thick), y * (h + thick), 0.5 * layout.wall_height],
            size=[
                thick if x else h + 2 * thick,
                thick if y else h + 2 * thick,
                0.5 * layout.wall_height,
            ],
            rgba=[0.5, 0.5, 0.55, 1],
            contype=0,
            conaffinity=0,
        )
        normal = np.array([-x, -y, 0.0])
        quat = np.zeros(4)
        mujoco.mju_quatZ2Vec(quat, normal)  # a plane's normal is its local z axis
        world.add_geom(
            name=f"wall_{i}",
            type=_G.mjGEOM_PLANE,
            pos=[x * h, y * h, 0.5 * layout.wall_height],
            quat=quat,
            size=[h, 0.5 * layout.wall_height, 0.1],
            group=3,  # hidden: the visual box draws the wall
            rgba=[0, 0, 0, 0],
            contype=SOLID_BITS,
            conaffinity=SOLID_BITS,
        )
    world.add_light(pos=[0, 0, 4 * h], dir=[0, 0, -1], diffuse=[0.7, 0.7, 0.7], castshadow=False)
    world.add_camera(name="top", pos=[0, 0, 2.6 * h], fovy=2 * math.degrees(math.atan(1 / 2.4)))
    for k in range(layout.num_targets):
        target = world.add_body(name=f"target_{k}", mocap=True, pos=[0, 0, 0])
        target.add_geom(
            type=_G.mjGEOM_CYLINDER,
            size=[layout.target_radius, 0.005 * layout.wall_height, 0],
            rgba=TARGET_COLORS[k % len(TARGET_COLORS)],
            contype=0,
            conaffinity=0,
        )
    for m in range(layout.num_boxes):
        box = world.add_body(name=f"box_{m}", pos=[0, 0, layout.box_half])
        box.add_freejoint(name=f"box_{m}")
        box.add_geom(
            name=f"box_{m}",
            type=_G.mjGEOM_BOX,
            size=[layout.box_half] * 3,
            mass=layout.box_mass,
            rgba=[0.65, 0.5, 0.3, 1],
            contype=SOLID_BITS | BOX_BITS,
            conaffinity=SOLID_BITS | BOX_BITS,
        )
        spec.add_sensor(
            name=f"box_{m}_pos", type=_S.mjSENS_FRAMEPOS, objtype=_O.mjOBJ_BODY, objname=f"box_{m}"
        )
    for i, j in touch_pairs:
        spec.add_sensor(
            name=f"boxes_{i}_{j}_dist",
            type=_S.mjSENS_GEOMDIST,
            objtype=_O.mjOBJ_GEOM,
            objname=f"box_{i}",
            reftype=_O.mjOBJ_GEOM,
            refname=f"box_{j}",
            cutoff=layout.box_half,
        )
