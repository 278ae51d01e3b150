"""Bodies (walkers) built with ``mujoco.MjSpec``: point mass, ball, Ant and a 12-joint quadruped.

Every body adds to a spec a root body named ``torso`` holding a site ``root`` (the body's
egocentric frame: origin at the torso, x axis = heading) and a tracking camera ``track``, plus
its joints, actuators (all with control range [-1, 1]) and its proprioceptive sensors. Task
code reads only the ``root`` frame sensors, so every task works with every body.

Sizes are multiples of :attr:`Body.scale` (metres): the arena, boxes, targets and tolerances are
scaled by it, and task observations are divided by it, so that egocentric task inputs have the
same distribution for a small point mass and for an Ant (what body transfer needs).

Proprioceptive observations (``proprio/...``) are MuJoCo sensors; :attr:`Body.proprio` maps each
observation key to its sensor names. Common to all bodies:

* ``proprio/velocity`` [3]: linear velocity of the root in the body frame (velocimeter), m/s.
* ``proprio/gyro`` [3]: angular velocity in the body frame, rad/s.

plus, for legged bodies: ``proprio/joints_pos`` [J] (rad), ``proprio/joints_vel`` [J] (rad/s),
``proprio/gravity`` [3] (the world's up axis in the body frame; [0, 0, 1] when upright) and
``proprio/height`` [1] (torso height over the floor, m).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

# Collision bitmasks (MuJoCo collides two geoms when ``contype`` of either shares a bit with
# ``conaffinity`` of the other). The floor is in class 1 only; walls are 1|2; boxes are 1|2|4.
# Hovering bodies (point mass, ball) are class 2 only, so they slide over the floor without
# contact friction but still hit walls and boxes. Legged bodies are class 1 and so touch the
# floor, walls and boxes. The Ant's geoms have conaffinity 0 (no self-collisions, as in Gym's
# Ant) and its hip segments are class 4 only (boxes only): see :class:`Ant`.
FLOOR_BITS = 1
HOVER_BITS = 2
BOX_BITS = 4
SOLID_BITS = FLOOR_BITS | HOVER_BITS

_J = mujoco.mjtJoint
_G = mujoco.mjtGeom
_S = mujoco.mjtSensor
_O = mujoco.mjtObj

BODY_COLOR = [0.85, 0.45, 0.2, 1.0]


@dataclass(frozen=True)
class Body:
    """A body to place in an arena.

    Attributes:
      name: registry name (``"pointmass"``, ``"ball"``, ``"ant"``, ``"quadruped"``).
      scale: characteristic size in metres; arena, objects and task observations scale with it.
      episode_seconds: default episode length on this body.
      spawn_height: torso height (m) at reset.
      free: whether the root is a free joint (legged) or planar slide/hinge joints (hovering).
      proprio: observation key -> sensor names (``"name"`` for the whole sensor, ``"name[i]"``
        for one component), filled by :meth:`build`.
    """

    name: str
    scale: float
    episode_seconds: float
    spawn_height: float
    free: bool
    proprio: dict[str, list[str]] = field(default_factory=dict, compare=False)

    def build(self, spec: mujoco.MjSpec) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def spawn(self, data: mujoco.MjData, qpos_adr: int, xy: np.ndarray, yaw: float) -> None:
        """Write the root pose into ``data.qpos`` starting at the root joint's address."""
        if self.free:
            data.qpos[qpos_adr : qpos_adr + 3] = (xy[0], xy[1], self.spawn_height)
            data.qpos[qpos_adr + 3 : qpos_adr + 7] = (
                math.cos(yaw / 2),
                0.0,
                0.0,
                math.sin(yaw / 2),
            )
        else:
            data.qpos[qpos_adr : qpos_adr + 2] = xy
            if self.has_yaw:
                data.qpos[qpos_adr + 2] = yaw

    @property
    def has_yaw(self) -> bool:
        """Whether the body can turn (the point mass cannot: its heading is always +x)."""
        return True

    # -- shared helpers ------------------------------------------------------------------------

    def _torso(self, spec: mujoco.MjSpec) -> mujoco.MjsBody:
        torso = spec.worldbody.add_body(name="torso", pos=[0, 0, self.spawn_height])
        torso.add_site(name="root", size=[0.02 * self.scale, 0, 0], rgba=[0, 0, 0, 0])
        # The egocentric frame every task reads: position and heading (x axis) of the root.
        for name, kind in (("root_pos", _S.mjSENS_FRAMEPOS), ("root_xaxis", _S.mjSENS_FRAMEXAXIS)):
            spec.add_sensor(name=name, type=kind, objtype=_O.mjOBJ_SITE, objname="root")
        # Behind and above the body, looking along its heading and slightly down.
        _add_camera(torso, "track", self.scale, distance=4.0, height=2.5)
        return torso

    def _root_sensors(self, spec: mujoco.MjSpec) -> None:
        self.proprio["proprio/velocity"] = [_sensor(spec, _S.mjSENS_VELOCIMETER, "root")]
        self.proprio["proprio/gyro"] = [_sensor(spec, _S.mjSENS_GYRO, "root")]

    def _joint_sensors(self, spec: mujoco.MjSpec, joints: list[str]) -> None:
        self.proprio["proprio/joints_pos"] = [
            _sensor(spec, _S.mjSENS_JOINTPOS, j, _O.mjOBJ_JOINT) for j in joints
        ]
        self.proprio["proprio/joints_vel"] = [
            _sensor(spec, _S.mjSENS_JOINTVEL, j, _O.mjOBJ_JOINT) for j in joints
        ]
        # World up in the body frame = z components of the body axes; the x axis is shared
        # with the task's heading sensor, so only y and z are added here.
        self.proprio["proprio/gravity"] = [
            "root_xaxis[2]",
            "body_root_yaxis[2]",
            "body_root_zaxis[2]",
        ]
        spec.add_sensor(
            name="body_root_yaxis", type=_S.mjSENS_FRAMEYAXIS, objtype=_O.mjOBJ_SITE, objname="root"
        )
        spec.add_sensor(
            name="body_root_zaxis", type=_S.mjSENS_FRAMEZAXIS, objtype=_O.mjOBJ_SITE, objname="root"
        )
        self.proprio["proprio/height"] = ["root_pos[2]"]


def _sensor(spec: mujoco.MjSpec, kind: mujoco.mjtSensor, obj: str, objtype=_O.mjOBJ_SITE) -> str:
    name = f"body_{kind.name.removeprefix('mjSENS_').lower()}_{obj}"
    spec.add_sensor(name=name, type=kind, objtype=objtype, objname=obj)
    return name


def _add_camera(
    body: mujoco.MjsBody, name: str, scale: float, distance: float, height: float
) -> None:
    pitch = math.atan2(height, distance)
    x_axis = np.array([0.0, -1.0, 0.0])
    y_axis = np.array([math.sin(pitch), 0.0, math.cos(pitch)])
    z_axis = np.cross(x_axis, y_axis)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.stack([x_axis, y_axis, z_axis], axis=1).ravel())
    body.add_camera(
        name=name,
        mode=mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM,
        pos=[-distance * scale, 0, height * scale],
        quat=quat,
        fovy=60,
    )


def _motor(spec: mujoco.MjSpec, joint: str, gear: float) -> None:
    spec.add_actuator(
        name=joint,
        target=joint,
        trntype=mujoco.mjtTrn.mjTRN_JOINT,
        gear=[gear, 0, 0, 0, 0, 0],
        ctrlrange=[-1, 1],
        ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE,
    )


@dataclass(frozen=True)
class PointMass(Body):
    """A hovering sphere moved by two slide actuators (x and y force). Heading is fixed to +x.

    Observations: ``proprio/velocity`` [3], ``proprio/gyro`` [3] (always 0; kept so that the
    point mass has the same keys as the ball).
    """

    name: str = "pointmass"
    scale: float = 0.25
    episode_seconds: float = 10.0
    spawn_height: float = 0.075
    free: bool = False
    mass: float = 0.3
    force: float = 1.5  # N at |ctrl| = 1
    damping: float = 3.0  # N s/m: top speed force / damping = 0.5 m/s

    @property
    def has_yaw(self) -> bool:
        return False

    def build(self, spec: mujoco.MjSpec) -> None:
        torso = self._torso(spec)
        for axis, name in (([1, 0, 0], "x"), ([0, 1, 0], "y")):
            torso.add_joint(name=name, type=_J.mjJNT_SLIDE, axis=axis, damping=self.damping)
        torso.add_geom(
            type=_G.mjGEOM_SPHERE,
            size=[self.spawn_height, 0, 0],
            mass=self.mass,
            rgba=BODY_COLOR,
            contype=HOVER_BITS,
            conaffinity=HOVER_BITS,
        )
        _motor(spec, "x", self.force)
        _motor(spec, "y", self.force)
        self._root_sensors(spec)


@dataclass(frozen=True)
class Ball(Body):
    """A hovering ball with a heading: actuators ``roll`` (force along the heading) and ``turn``.

    The ball glides on planar joints (slide x, slide y, hinge yaw) with damping standing in for
    rolling resistance; a small nose marks the heading. Observations: ``proprio/velocity`` [3]
    (forward, left, up in the body frame) and ``proprio/gyro`` [3] (yaw rate in the last entry).
    """

    name: str = "ball"
    scale: float = 0.5
    episode_seconds: float = 15.0
    spawn_height: float = 0.15
    free: bool = False
    mass: float = 2.0
    force: float = 10.0  # N along the heading at |ctrl| = 1
    damping: float = 10.0  # top speed 1 m/s
    torque: float = 1.0
    yaw_damping: float = 0.5  # top yaw rate 2 rad/s

    def build(self, spec: mujoco.MjSpec) -> None:
        torso = self._torso(spec)
        for axis, name in (([1, 0, 0], "x"), ([0, 1, 0], "y")):
            torso.add_joint(name=name, type=_J.mjJNT_SLIDE, axis=axis, damping=self.damping)
        torso.add_joint(name="yaw", type=_J.mjJNT_HINGE, axis=[0, 0, 1], damping=self.yaw_damping)
        r = self.spawn_height
        torso.add_geom(
            type=_G.mjGEOM_SPHERE,
            size=[r, 0, 0],
            mass=self.mass,
            rgba=BODY_COLOR,
            contype=HOVER_BITS,
            conaffinity=HOVER_BITS,
        )
        torso.add_geom(  # the nose: visual only
            type=_G.mjGEOM_SPHERE,
            size=[0.3 * r, 0, 0],
            pos=[0.9 * r, 0, 0.4 * r],
            rgba=[0.2, 0.2, 0.2, 1],
            contype=0,
            conaffinity=0,
            mass=0,
        )
        # A site transmission pushes along the site's x axis, i.e. along the current heading.
        spec.add_actuator(
            name="roll",
            target="root",
            trntype=mujoco.mjtTrn.mjTRN_SITE,
            gear=[self.force, 0, 0, 0, 0, 0],
            ctrlrange=[-1, 1],
            ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE,
        )
        spec.add_actuator(
            name="turn",
            target="yaw",
            trntype=mujoco.mjtTrn.mjTRN_JOINT,
            gear=[self.torque, 0, 0, 0, 0, 0],
            ctrlrange=[-1, 1],
            ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE,
        )
        self._root_sensors(spec)


@dataclass(frozen=True)
class Ant(Body):
    """The Ant: a sphere torso and four two-joint legs (hip yaw, ankle), 8 torque motors.

    Geometry follows Gym's Ant; density is set for dm_control's 12.4 kg total mass, and joints
    have armature 1 and damping 1, motor gear 150, as in dm_control's locomotion Ant.

    Collisions (about 40% of an Ant ``mj_step`` when every geom collides with everything) are
    limited to the contacts that can happen; masses and inertias are unchanged:

    * no self-collisions (conaffinity 0 on every Ant geom), as in Gym's Ant: the legs are
      90 degrees apart and the hips turn by at most 30 degrees.
    * the torso sphere and the lower legs (``*_foot``) touch the floor, walls and boxes.
    * the hip segments (``*_aux``) touch boxes only. Against any plane (floor or wall) a hip
      segment is never the deepest geom: its outer end is the start of the lower leg, and with
      hip yaw within +-30 degrees its inner end is, for every direction, at least 1.5 cm
      behind the torso sphere or the lower leg. A box's edge or corner can still reach it.
    * the torso's leg stubs (geoms ``*_leg``) never collide: they are covered by the torso
      sphere and the hip segment's inner end up to 8 mm.

    Joint damping is integrated explicitly (MuJoCo's ``eulerdamp`` off, which otherwise
    factorizes ``M + h D`` a second time every step): with damping 1 N m s and armature
    1 kg m^2, ``h * damping / inertia`` is at most 0.005 at h = 5 ms, so explicit damping is
    stable with a 400x margin and differs from the implicit update by about 2.5e-5 per step.
    """

    name: str = "ant"
    scale: float = 1.0
    episode_seconds: float = 20.0
    spawn_height: float = 0.75
    free: bool = True
    density: float = 67.963354395469
    gear: float = 150.0

    def build(self, spec: mujoco.MjSpec) -> None:
        spec.option.disableflags |= mujoco.mjtDisableBit.mjDSBL_EULERDAMP
        torso = self._torso(spec)
        torso.add_freejoint(name="root")
        geom = {
            "density": self.density,
            "rgba": BODY_COLOR,
            "friction": [1, 0.5, 0.5],
            "conaffinity": 0,
        }
        touches_all, touches_boxes, touches_none = FLOOR_BITS, BOX_BITS, 0
        torso.add_geom(type=_G.mjGEOM_SPHERE, size=[0.25, 0, 0], contype=touches_all, **geom)
        joints = []
        lo, hi = math.radians(30), math.radians(100)
        # (direction of the leg in the torso plane, ankle axis, ankle range), as in Gym's Ant.
        legs = {
            "front_left": ((1, 1), (-1, 1, 0), (lo, hi)),
            "front_right": ((1, -1), (1, 1, 0), (lo, hi)),
            "back_right": ((-1, -1), (-1, 1, 0), (-hi, -lo)),
            "back_left": ((-1, 1), (1, 1, 0), (-hi, -lo)),
        }
        for leg, ((sx, sy), ankle_axis, ankle_range) in legs.items():
            d = np.array([0.2 * sx, 0.2 * sy, 0.0])
            # Gym's Ant puts this segment in a jointless body of its own; it is welded to the
            # torso either way, so here it is a geom of the torso (the same rigid body).
            torso.add_geom(
                name=f"{leg}_leg",
                type=_G.mjGEOM_CAPSULE,
                size=[0.08, 0, 0],
                fromto=[0, 0, 0, *d],
                contype=touches_none,
                **geom,
            )
            aux = torso.add_body(name=f"{leg}_aux", pos=d)
            aux.add_joint(
                name=f"{leg}_hip",
                type=_J.mjJNT_HINGE,
                axis=[0, 0, 1],
                range=[-math.radians(30), math.radians(30)],
                armature=1.0,
                damping=1.0,
            )
            aux.add_geom(
                type=_G.mjGEOM_CAPSULE,
                size=[0.08, 0, 0],
                fromto=[0, 0, 0, *d],
                contype=touches_boxes,
                **geom,
            )
            foot = aux.add_body(name=f"{leg}_foot", pos=d)
            foot.add_joint(
                name=f"{leg}_ankle",
                type=_J.mjJNT_HINGE,
                axis=ankle_axis,
                range=ankle_range,
                armature=1.0,
                damping=1.0,
            )
            foot.add_geom(
                type=_G.mjGEOM_CAPSULE,
                size=[0.08, 0, 0],
                fromto=[0, 0, 0, *(2 * d)],
                contype=touches_all,
                **geom,
            )
            joints += [f"{leg}_hip", f"{leg}_ankle"]
        for j in joints:
            _motor(spec, j, self.gear)
        self._root_sensors(spec)
        self._joint_sensors(spec, joints)


@dataclass(frozen=True)
class Quadruped(Body):
    """A 12-actuator quadruped: box torso, four legs with hip yaw, hip pitch and knee joints.

    Joint springs hold a standing pose (thighs and shins at +-0.4 / -+0.8 rad) when the
    actions are zero; the torque motors (gear 15 N m) act around it. This keeps uniform random
    actions from flipping the body (with gear 25 and stiffness 40 all of 8 copies flipped
    within 10 s), which early exploration relies on.
    """

    name: str = "quadruped"
    scale: float = 1.0
    episode_seconds: float = 20.0
    spawn_height: float = 0.58
    free: bool = True
    torso_mass: float = 8.0
    segment_mass: float = 0.5
    gear: float = 15.0
    stiffness: float = 80.0

    def build(self, spec: mujoco.MjSpec) -> None:
        torso = self._torso(spec)
        torso.add_freejoint(name="root")
        torso.add_geom(
            type=_G.mjGEOM_BOX, size=[0.35, 0.18, 0.06], mass=self.torso_mass, rgba=BODY_COLOR
        )
        joints = []
        for leg, (sx, sy) in {
            "front_left": (1, 1),
            "front_right": (1, -1),
            "back_right": (-1, -1),
            "back_left": (-1, 1),
        }.items():
            # Knees point forward on the front legs and backward on the hind legs.
            pitch0, knee0 = -0.4 * sx, 0.8 * sx
            hip = torso.add_body(name=f"{leg}_hip", pos=[0.3 * sx, 0.24 * sy, 0])
            joint = {"type": _J.mjJNT_HINGE, "armature": 0.1, "damping": 1.0}
            hip.add_joint(
                name=f"{leg}_yaw",
                axis=[0, 0, 1],
                range=[-0.5, 0.5],
                stiffness=0.5 * self.stiffness,
                **joint,
            )
            hip.add_joint(
                name=f"{leg}_pitch",
                axis=[0, 1, 0],
                range=[pitch0 - 1.0, pitch0 + 1.0],
                stiffness=self.stiffness,
                springref=pitch0,
                **joint,
            )
            hip.add_geom(
                type=_G.mjGEOM_CAPSULE,
                size=[0.05, 0, 0],
                fromto=[0, 0, 0, 0, 0, -0.28],
                mass=self.segment_mass,
                rgba=BODY_COLOR,
            )
            shin = hip.add_body(name=f"{leg}_shin", pos=[0, 0, -0.28])
            shin.add_joint(
                name=f"{leg}_knee",
                axis=[0, 1, 0],
                range=sorted([knee0 - 1.0 * sx, knee0 + 0.8 * sx]),
                stiffness=self.stiffness,
                springref=knee0,
                **joint,
            )
            shin.add_geom(
                type=_G.mjGEOM_CAPSULE,
                size=[0.04, 0, 0],
                fromto=[0, 0, 0, 0, 0, -0.28],
                mass=self.segment_mass,
                rgba=BODY_COLOR,
                friction=[1.5, 0.5, 0.5],
            )
            joints += [f"{leg}_yaw", f"{leg}_pitch", f"{leg}_knee"]
        for j in joints:
            _motor(spec, j, self.gear)
        self._root_sensors(spec)
        self._joint_sensors(spec, joints)


BODIES: dict[str, type[Body]] = {
    "pointmass": PointMass,
    "ball": Ball,
    "ant": Ant,
    "quadruped": Quadruped,
}


def get_body(name: str | Body) -> Body:
    """A fresh :class:`Body` by name; raises ``KeyError`` with suggestions for unknown names."""
    if isinstance(name, Body):
        return type(name)(
            **{f: getattr(name, f) for f in name.__dataclass_fields__ if f != "proprio"}
        )
    if name not in BODIES:
        close = difflib.get_close_matches(name, list(BODIES), n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown body {name!r}{hint} (bodies: {', '.join(BODIES)})")
    return BODIES[name]()
