"""Named environments: ``make("pointmass-gtt3", num_envs=8, seed=0)``.

An environment is named by one string that any process (evaluation, video, resume, a Ray
worker) resolves from ``run.json`` alone, because ``TrainConfig.env`` and ``env_kwargs`` are
all it needs. :func:`make` accepts, in this order:

1. a registered name (``pointmass-gtt3``; ``behavior-priors list envs``);
2. a plugin: an entry point of an installed package in the group ``behavior_priors.envs``
   whose name is the environment name and whose value is ``"module:callable"`` (the same
   callable contract as 4), e.g. in the package's ``pyproject.toml``::

       [project.entry-points."behavior_priors.envs"]
       my-reacher = "my_package.envs:make_reacher"

3. ``gymnasium:<id>`` (``gymnasium:Pendulum-v1``): ``gymnasium.make(id, **rest)`` wrapped by
   :class:`~behavior_priors.envs.adapters.FromGymnasium`; ``dm_control:<domain>-<task>``
   (``dm_control:cartpole-swingup``): ``dm_control.suite.load(domain, task,
   task_kwargs=rest)`` wrapped by :class:`~behavior_priors.envs.adapters.FromDmControl`.
   The adapter's own options (:data:`ADAPTER_OPTIONS`: ``key_map``, ``obs_keys``, ``task_id``,
   ``success``) are taken out of ``env_kwargs`` first; ``rest`` is everything else;
4. ``<module>:<callable>`` (``my_envs:make_reacher``) for a user's own factory; ``module`` must
   be importable in every process that makes the environment (installed, or on
   ``PYTHONPATH``). The callable is either

   * *batched*: it has a ``num_envs`` parameter, is called ``callable(num_envs=B, **kwargs)``
     and returns one of our :class:`~behavior_priors.envs.base.Env`; or
   * *single-copy*: it has no ``num_envs`` parameter, is called ``callable(**rest)`` once per
     copy and returns a ``gymnasium.Env`` or a ``dm_env.Environment`` (dm_control suite or
     composer), which the matching adapter wraps with the adapter options from ``kwargs``.

Registered factories are ``"module:attribute"`` strings imported on first use, so listing
names costs nothing and optional dependencies (dm_control) are only imported when their
environments are made.

Consent: a name of form 4 (or a Gymnasium id with a module prefix, ``gymnasium:<module>:<id>``,
which Gymnasium imports) runs code that the string names. Typed by the user, that is the
user's choice; read from a run folder, which may come from anyone, it is not:
:func:`require_consent` refuses such a name unless the caller consents for that call
(``--trust-env-code``, ``trust_code=True``). Registered names, plugins, plain ``gymnasium:``
ids and ``dm_control:`` tasks name no code and need no consent. :func:`code_named_by` says
which module a name would import.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from behavior_priors.envs.base import Env

ENTRY_POINT_GROUP = "behavior_priors.envs"
# env_kwargs that configure an adapter rather than the wrapped environment.
ADAPTER_OPTIONS = ("key_map", "obs_keys", "task_id", "success")
_FORMS = "'gymnasium:<id>', 'dm_control:<domain>-<task>' or '<module>:<callable>'"


class UntrustedCodeError(PermissionError):
    """A name read from a run folder would import and call code, and the user did not consent."""


def code_named_by(name: str) -> str | None:
    """The module that :func:`make` would import *because the string names it*, or ``None``.

    ``None`` for a registered name, an installed plugin, a plain ``gymnasium:<id>`` or a
    ``dm_control:`` task (and for a name :func:`make` refuses anyway); the module of a
    ``<module>:<callable>`` name, or of a ``gymnasium:<module>:<id>`` id, otherwise. Nothing
    is imported to answer.
    """
    if not isinstance(name, str) or name in _REGISTRY or name.startswith("dm_control:"):
        return None
    if name.startswith("gymnasium:"):
        env_id = name.removeprefix("gymnasium:")
        # Gymnasium imports the part before a ':' of an id (its "module:EnvName-v0" form).
        return env_id.partition(":")[0] if ":" in env_id else None
    if name in _plugins() or ":" not in name:
        return None
    return name.partition(":")[0]


def require_consent(name: str, trust_code: bool, source: str) -> None:
    """Refuse ``name``, read from ``source`` (e.g. a ``run.json``), when making it would import
    code it names (:func:`code_named_by`) and ``trust_code`` is false.

    Raises:
      UntrustedCodeError: naming the environment, the module and how to consent.
    """
    module = code_named_by(name)
    if module is None or trust_code:
        return
    raise UntrustedCodeError(
        f"{source} names the environment {name!r}, which would import and call code from "
        f"module {module!r}; code named by a run folder runs only with your consent: if you "
        "trust where this folder came from, add --trust-env-code (Python: trust_code=True)"
    )


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment: a factory and the keyword arguments it is called with."""

    name: str
    factory: str  # "package.module:callable"
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def load(self) -> Callable[..., Env]:
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)


_REGISTRY: dict[str, EnvEntry] = {}


def register(name: str, factory: str, description: str = "", **kwargs: Any) -> None:
    """Register ``name``; ``factory`` is ``"module:callable"`` taking ``num_envs``, ``seed``.

    Registration lives in this process only; to make a name every process knows, publish it
    as a plugin entry point or name the factory directly (see the module docstring).
    """
    if name in _REGISTRY:
        raise ValueError(f"environment {name!r} is already registered")
    if ":" in name:
        raise ValueError(f"environment name {name!r} must not contain ':' (reserved for {_FORMS})")
    _REGISTRY[name] = EnvEntry(name, factory, dict(kwargs), description)


def is_native(name: str) -> bool:
    """Whether ``name`` is an environment of this package's own suite (registered with a factory
    in ``behavior_priors``), as opposed to an outside one: a Gymnasium id, a dm_control task, a
    plugin, a user's ``module:callable`` or a name a user registered."""
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    return entry is not None and entry.factory.startswith("behavior_priors.")


def _plugins() -> dict[str, Any]:
    """``{name: EntryPoint}`` of installed packages' environments (``ENTRY_POINT_GROUP``)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def list_envs() -> list[EnvEntry]:
    """All registered and plugin environments, sorted by name."""
    entries = dict(_REGISTRY)
    for name, ep in _plugins().items():
        dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
        entries.setdefault(name, EnvEntry(name, ep.value, {}, f"plugin from {dist}"))
    return [entries[k] for k in sorted(entries)]


def make(name: str, /, num_envs: int = 1, seed: int | None = None, **overrides: Any) -> Env:
    """Build the environment ``name`` (any form of the module docstring) with ``num_envs``
    copies; ``overrides`` are its ``env_kwargs``; ``seed`` resets it once when given.

    Raises:
      KeyError: an unknown name (with the closest known names as suggestions), a gymnasium id
        or dm_control task that does not exist, or a module or attribute that is not there.
      TypeError: a factory that returns something that is not an environment.
    """
    if not isinstance(name, str) or not name:
        raise KeyError(f"an environment name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        entry = _REGISTRY[name]
        env = entry.load()(num_envs=num_envs, **{**entry.kwargs, **overrides})
    elif name.startswith("gymnasium:"):
        env = _make_gymnasium(name.removeprefix("gymnasium:"), num_envs, overrides)
    elif name.startswith("dm_control:"):
        env = _make_dm_control(name.removeprefix("dm_control:"), num_envs, overrides)
    elif (plugin := _plugins().get(name)) is not None:
        env = _call_factory(name, plugin.load(), num_envs, overrides)
    elif ":" in name:
        env = _call_factory(name, _import_callable(name), num_envs, overrides)
    else:
        known = [e.name for e in list_envs()]
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(
            f"unknown environment {name!r}{hint} (see `behavior-priors list`, or name one as "
            f"{_FORMS})"
        )
    if seed is not None:
        env.reset(seed)
    return env


def _split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(adapter options, the rest)`` of ``env_kwargs``."""
    options = {k: v for k, v in kwargs.items() if k in ADAPTER_OPTIONS}
    return options, {k: v for k, v in kwargs.items() if k not in ADAPTER_OPTIONS}


def _first_then(first: Any, build: Callable[[], Any]) -> Callable[[], Any]:
    """An ``env_fn`` that returns ``first`` once (the instance already built to check the id
    or type), then new instances from ``build``."""
    pending = [first]
    return lambda: pending.pop() if pending else build()


def _make_gymnasium(env_id: str, num_envs: int, kwargs: dict[str, Any]) -> Env:
    import gymnasium as gym

    from behavior_priors.envs.adapters.from_gymnasium import FromGymnasium, route_mujoco_warnings

    options, rest = _split_options(kwargs)
    route_mujoco_warnings()  # before the first model loads
    # Frames on demand (videos); building the renderer waits until the first render().
    rest.setdefault("render_mode", "rgb_array")
    try:
        probe = gym.make(env_id, **rest)
    except gym.error.UnregisteredEnv as e:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        hint = f"; did you mean {', '.join('gymnasium:' + c for c in close)}?" if close else ""
        raise KeyError(f"unknown Gymnasium environment {env_id!r}{hint} ({e})") from None
    return FromGymnasium(_first_then(probe, lambda: gym.make(env_id, **rest)), num_envs, **options)


def _make_dm_control(task_name: str, num_envs: int, kwargs: dict[str, Any]) -> Env:
    from behavior_priors.envs.adapters.from_dm_control import FromDmControl, require_dm_control

    require_dm_control()
    from dm_control import suite

    domain, _, task = task_name.partition("-")
    if (domain, task) not in suite.ALL_TASKS:
        known = [f"{d}-{t}" for d, t in suite.ALL_TASKS]
        close = difflib.get_close_matches(task_name, known, n=3)
        hint = f"; did you mean {', '.join('dm_control:' + c for c in close)}?" if close else ""
        raise KeyError(
            f"unknown dm_control suite task {task_name!r}{hint} "
            "(names are dm_control:<domain>-<task>, e.g. dm_control:cartpole-swingup)"
        )
    options, rest = _split_options(kwargs)
    environment_kwargs = rest.pop("environment_kwargs", None)

    def build():
        return suite.load(
            domain, task, task_kwargs=dict(rest), environment_kwargs=environment_kwargs
        )

    return FromDmControl(build, num_envs, **options)


def _import_callable(name: str) -> Callable[..., Any]:
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise KeyError(f"environment {name!r}: expected '<module>:<callable>'")
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        # An environment factory is the user's code or a package's, never the standard
        # library: a run.json naming `os:system` must not run a command when it is evaluated.
        raise KeyError(
            f"environment {name!r}: {top!r} is a standard-library module, not an environment "
            "factory"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only a missing *named* module means a bad name; a missing dependency of the user's
        # module is theirs to see as it is.
        if e.name is None or not module_name.startswith(e.name):
            raise
        raise KeyError(
            f"environment {name!r}: no module named {e.name!r} (it must be importable in every "
            "process that makes the environment: install it or put it on PYTHONPATH)"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            close = difflib.get_close_matches(attr, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"environment {name!r}: {module_name} has no {attr!r}{hint}")
        obj = getattr(obj, part)
        if inspect.ismodule(obj):
            # `pkg.mod:os.system` reaches another module's function through an import of
            # `pkg.mod`: a factory is named by the module that defines it.
            raise KeyError(
                f"environment {name!r}: {part!r} is a module imported by {module_name}, not an "
                f"environment factory; name the factory by its own module ({obj.__name__}:...)"
            )
    if not callable(obj):
        raise TypeError(f"environment {name!r}: {attr!r} is a {type(obj).__name__}, not callable")
    return obj


def _call_factory(name: str, fn: Callable[..., Any], num_envs: int, kwargs: dict[str, Any]) -> Env:
    """Call a user's factory by the contract of the module docstring (batched or single-copy)."""
    try:
        batched = "num_envs" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature: treat as single-copy
        batched = False
    if batched:
        env = fn(num_envs=num_envs, **kwargs)
        if not isinstance(env, Env):
            raise TypeError(
                f"environment {name!r}: a factory with a num_envs parameter must return a "
                f"behavior_priors Env, got {type(env).__name__} (drop num_envs to return one "
                "gymnasium or dm_env environment per copy)"
            )
        return env
    options, rest = _split_options(kwargs)
    probe = fn(**rest)
    env_fn = _first_then(probe, lambda: fn(**rest))
    import gymnasium as gym

    if isinstance(probe, gym.Env):
        from behavior_priors.envs.adapters.from_gymnasium import FromGymnasium

        return FromGymnasium(env_fn, num_envs, **options)
    if _is_dm_env(probe):
        from behavior_priors.envs.adapters.from_dm_control import FromDmControl

        return FromDmControl(env_fn, num_envs, **options)
    if isinstance(probe, Env):
        raise TypeError(
            f"environment {name!r} returned a behavior_priors Env but has no num_envs "
            "parameter; add `num_envs` to its signature so it can build B copies"
        )
    raise TypeError(
        f"environment {name!r}: the factory returned {type(probe).__name__}; expected a "
        "gymnasium.Env, a dm_env.Environment, or (with a num_envs parameter) a behavior_priors Env"
    )


def _is_dm_env(obj: Any) -> bool:
    try:
        import dm_env
    except ImportError:
        return False
    return isinstance(obj, dm_env.Environment)


# --- Registered environments -----------------------------------------------------------------
# Add entries below with `register(...)`, one block per family.

# Native MuJoCo suite (behavior_priors.envs.mujoco): every body on every task family.
# Multi-task entries sample one task per episode; the task id is in `task/id_onehot`.
_MUJOCO_TASK_SETS: dict[str, tuple[str, dict[str, Any], str]] = {
    "gtt3": (
        ("go_to_target:0", "go_to_target:1", "go_to_target:2"),
        {},
        "go to one of 3 targets (task input: which one)",
    ),
    "movebox": (
        ("move_box:0:0", "move_box:0:1", "move_box:1:0", "move_box:1:1"),
        {},
        "move one of 2 boxes to one of 2 targets",
    ),
    "moveheavybox": (
        ("move_box:0:0", "move_box:0:1"),
        {"box_mass_factor": 3.0},
        "move a box 3x heavier than in movebox to one of 2 targets",
    ),
    "gather": (("gather:0:1",), {}, "push two boxes until they touch"),
    "movebox-then-gtt": (
        ("move_box_then_go:0:0:1", "move_box_then_go:0:1:0"),
        {},
        "move the box to one target, then go to the other",
    ),
}
for _body in ("pointmass", "ball", "ant", "quadruped"):
    for _suffix, (_tasks, _extra, _what) in _MUJOCO_TASK_SETS.items():
        register(
            f"{_body}-{_suffix}",
            "behavior_priors.envs.mujoco.env:make_task_env",
            f"MuJoCo {_body}: {_what}",
            body=_body,
            tasks=_tasks,
            **_extra,
        )

# Grid world (behavior_priors.envs.gridworld): one task per goal cell, default goal sets.
register(
    "gridworld-tworooms",
    "behavior_priors.envs.gridworld.env:make_gridworld",
    "grid world, two rooms, 4 corner goals (task id = goal cell index)",
    layout="tworooms",
)
register(
    "gridworld-fourrooms",
    "behavior_priors.envs.gridworld.env:make_gridworld",
    "grid world, four rooms, 4 corner goals (task id = goal cell index)",
    layout="fourrooms",
)

# dm_control reference tasks (optional `dmc` extra; imported only when made).
register(
    "dmc-ant-gtt",
    "behavior_priors.envs.adapters.from_dm_control:ant_go_to_target",
    "dm_control locomotion go-to-target with the Ant (needs the dmc extra)",
)
