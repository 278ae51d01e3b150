"""Configuration of the SVG(0) agent with a (hierarchical) behaviour prior."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal, get_args

PolicyKind = Literal["flat", "hierarchical", "distral"]
PriorKind = Literal["none", "flat", "hierarchical", "distilled"]
DistralColumns = Literal["1col", "2col"]
LowLevel = Literal["shared", "separate"]
HighPriorKind = Literal["learned", "normal", "ar1", "learned_ar"]

# The bounds a numeric setting can have, as its error message writes them.
_BOUNDS = {
    ">= 0": lambda v: v >= 0,
    "> 0": lambda v: v > 0,
    ">= 1": lambda v: v >= 1,
    "in (0, 1]": lambda v: 0 < v <= 1,
    "in [0, 1]": lambda v: 0 <= v <= 1,
    "in [0, 1)": lambda v: 0 <= v < 1,
    "in (0, 1)": lambda v: 0 < v < 1,
    "": lambda v: True,  # any finite number
}


def number_problem(
    name: str,
    value: Any,
    bound: str,
    *,
    integer: bool = False,
    none_ok: bool = False,
    say: str | None = None,
) -> str | None:
    """What is wrong with the numeric setting ``name`` (``None``: nothing): not a number (or
    not an integer, with ``integer``), not finite, or outside ``bound`` (a key of ``_BOUNDS``).
    Settings arrive from run.json and the command line as well as from Python, so a string or
    a nan must be refused here, before any arithmetic or comparison on it. ``say`` words the
    bound in the out-of-range message."""
    if value is None and none_ok:
        return None
    either = "None or " if none_ok else ""
    kind = numbers.Integral if integer else numbers.Real
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or not (integer or math.isfinite(value))
    ):
        what = "an integer" if integer else "a finite number"
        return f"{name} must be {either}{what}{' ' if bound else ''}{bound}, got {value!r}"
    if not _BOUNDS[bound](value):
        return f"{name} must be {either}{say or bound}, got {value!r}"
    return None


def bool_problem(name: str, value: Any, *, none_ok: bool = False) -> str | None:
    """What is wrong with the switch ``name`` (``None``: nothing): ``"no"`` or ``1`` from a
    hand-edited run.json would otherwise count as true."""
    if isinstance(value, bool) or (value is None and none_ok):
        return None
    return f"{name} must be {'None, True or False' if none_ok else 'True or False'}, got {value!r}"


def choice_problem(name: str, value: Any, kind: Any) -> str | None:
    """What is wrong with ``name``, one of the values of the ``Literal`` type ``kind``."""
    choices = get_args(kind)
    if isinstance(value, str) and value in choices:
        return None
    return f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}"


# Modules that ``SVG0Config.frozen`` can name: a frozen module keeps its parameters bit for bit
# (transfer: a prior or a low level reused from another run).
FREEZABLE = (
    "policy",
    "policy.high",
    "policy.low",
    "policy.distilled",  # Distral's pi0
    "policy.columns",  # Distral's task columns
    "prior",
    "prior.high",
    "prior.low",
    "critic",
)


@dataclass(frozen=True)
class SVG0Config:
    """Every choice of docs/paper.md sections 1-3. Defaults: hierarchical policy and prior with a
    shared low level and a learned high-level prior that sees only proprioception.

    Observation keys are exact keys or prefixes ending in ``/`` (see
    :mod:`behavior_priors.networks.observations`).

    The action space (continuous box or discrete) comes from the environment, not from here:
    with discrete actions the flat policy, the low levels and the flat prior are categorical,
    the critic outputs one value per action and the losses take exact expectations over actions.

    Distral (docs/paper.md section 6, discrete actions only) is ``policy="distral"`` with
    ``prior="distilled"``: one column per task (chosen by the one-hot ``distral_task_key``) and
    the distilled pi0, both reading ``prior_keys``; ``kl_cost`` is c_KL and ``entropy_cost``
    c_Ent. See :class:`behavior_priors.networks.DistralPolicy`.
    """

    # --- architecture -------------------------------------------------------------------
    policy: PolicyKind = "hierarchical"
    prior: PriorKind = "hierarchical"
    low_level: LowLevel = "shared"
    high_prior: HighPriorKind = "learned"
    ar1_coefficient: float = 0.95
    latent_dim: int = 8
    # The prior acting alone holds each z for k steps (a k-step option); the policy resamples
    # every step (the learner assumes it). See behavior_priors.agents.svg0.actor.
    latent_hold_steps: int = 1
    policy_keys: tuple[str, ...] = ("proprio/", "task/")  # flat policy
    high_keys: tuple[str, ...] = ("proprio/", "task/")  # pi^H
    low_keys: tuple[str, ...] = ("proprio/",)  # pi^L (and pi0^L)
    prior_keys: tuple[str, ...] = ("proprio/",)  # flat pi0, or a learned pi0^H
    critic_keys: tuple[str, ...] = ("proprio/", "task/")
    critic_uses_latent: bool = False  # Q(x, z, a) instead of Q(x, a)
    policy_hidden: tuple[int, ...] = (200, 100)
    prior_hidden: tuple[int, ...] = (200, 100)
    critic_hidden: tuple[int, ...] = (400, 300)
    min_scale: float = 0.1
    distral_columns: DistralColumns = "2col"
    distral_task_key: str = "task/goal_index"

    # --- objective ----------------------------------------------------------------------
    discount: float = 0.99
    retrace_lambda: float = 1.0
    kl_cost: float = 0.01  # alpha
    entropy_cost: float = 1e-3  # alpha_H
    # Whether alpha_H H(pi') also enters the bootstrap value V (the soft return, as in SAC), or
    # only the policy loss (as in the authors' public agent). None: only for Distral, whose
    # objective is the soft return; docs/agent.md has the measurement behind the choice.
    entropy_in_value: bool | None = None
    # SAC's automatic temperature: learn alpha_H (starting at ``entropy_cost``) so that the
    # policy's entropy (E_z H(pi^L) for a hierarchical policy) tracks this many nats, by
    # gradient steps on log alpha_H with loss log(alpha_H) (H - target). None: alpha_H fixed.
    # SAC's choice is -dim(A); a Gaussian head's scale floor (min_scale) bounds H from below
    # (about -0.88 nats per dimension at min_scale 0.1), so a lower target anneals alpha_H to 0.
    target_entropy: float | None = None
    entropy_learning_rate: float = 3e-4
    # Weight of the hinge on the bounded action head's pre-activations (beyond +-3, where tanh
    # and sigmoid stop passing gradient) in the policy loss; see networks.heads.saturation.
    saturation_cost: float = 1.0
    num_action_samples: int = 10  # S for the bootstrap value V(x)
    num_policy_samples: int = 1  # reparameterised samples per state in the SVG(0) loss
    num_kl_samples: int = 1  # z samples for the low-level term of the KL bound
    # An ablation, not a way to train: with z resampled every step, a critic's dQ/dz is near 0,
    # so pi^H gets no reward signal through it (docs/agent.md).
    stop_q_grad_into_latent: bool = False

    # --- optimisation -------------------------------------------------------------------
    policy_learning_rate: float = 1e-4
    critic_learning_rate: float = 1e-4
    prior_learning_rate: float = 1e-4
    max_grad_norm: float = 40.0
    target_update_period: int = 100
    # Polyak averaging: every step target <- tau * online + (1 - tau) * target (SAC's soft
    # update, tau = 0.005). None: hard copies every ``target_update_period`` steps instead.
    target_update_rate: float | None = None
    frozen: tuple[str, ...] = ()  # modules never updated, from FREEZABLE (e.g. "prior")

    def __post_init__(self):
        found = self._field_problems()
        problems = list(found.values())
        if not found.keys() & {"policy", "prior", "low_level"}:
            problems += self._combination_problems(set(found))
        problems += self._frozen_problems()
        if problems:
            raise ValueError("invalid SVG0Config: " + "; ".join(problems))

    def _field_problems(self) -> dict[str, str]:
        """Each field on its own, its type and its range: ``{field: problem}``."""

        def number(name: str, bound: str, **kwargs: Any) -> str | None:
            return number_problem(name, getattr(self, name), bound, **kwargs)

        found = {
            "policy": choice_problem("policy", self.policy, PolicyKind),
            "prior": choice_problem("prior", self.prior, PriorKind),
            "low_level": choice_problem("low_level", self.low_level, LowLevel),
            "high_prior": choice_problem("high_prior", self.high_prior, HighPriorKind),
            "distral_columns": choice_problem(
                "distral_columns", self.distral_columns, DistralColumns
            ),
            # 1 would make the AR(1) prior's variance 1 - a^2 zero.
            "ar1_coefficient": number("ar1_coefficient", "in [0, 1)"),
            "latent_dim": number("latent_dim", ">= 1", integer=True, say="positive"),
            "latent_hold_steps": number("latent_hold_steps", ">= 1", integer=True),
            # A floor of 0 lets a confident Gaussian's log-density and the KL to it blow up;
            # one at or above the action heads' ceiling (networks.gaussian_net.
            # ACTION_MAX_SCALE = 1) leaves them no range, which they refuse when built.
            "min_scale": number("min_scale", "in (0, 1)"),
            "discount": number("discount", "in (0, 1]"),
            "retrace_lambda": number("retrace_lambda", "in [0, 1]"),
            "target_entropy": number("target_entropy", "", none_ok=True),
            "entropy_learning_rate": number("entropy_learning_rate", "> 0"),
            # Clipping to a norm of 0 or below would zero every gradient.
            "max_grad_norm": number("max_grad_norm", "> 0"),
            "target_update_rate": number("target_update_rate", "in (0, 1]", none_ok=True),
            "critic_uses_latent": bool_problem("critic_uses_latent", self.critic_uses_latent),
            "stop_q_grad_into_latent": bool_problem(
                "stop_q_grad_into_latent", self.stop_q_grad_into_latent
            ),
            "entropy_in_value": bool_problem(
                "entropy_in_value", self.entropy_in_value, none_ok=True
            ),
        }
        # Costs: 0 switches a term off; a negative one would reward what the term penalises.
        for name in ("kl_cost", "entropy_cost", "saturation_cost"):
            found[name] = number(name, ">= 0")
        # Learning rates: 0 keeps a module's parameters as they are (Adam's step times 0; tests
        # train one module alone so); a negative one climbs the loss.
        for name in ("policy_learning_rate", "critic_learning_rate", "prior_learning_rate"):
            found[name] = number(name, ">= 0")
        for name in (
            "num_action_samples",
            "num_policy_samples",
            "num_kl_samples",
            "target_update_period",
        ):
            found[name] = number(name, ">= 1", integer=True)
        for name in ("policy_keys", "high_keys", "low_keys", "prior_keys", "critic_keys"):
            keys = getattr(self, name)
            if not _tuple_of(keys, lambda k: isinstance(k, str) and k != ""):
                found[name] = (
                    f"{name} must be a non-empty tuple of observation keys (exact keys or "
                    f"prefixes ending in '/'), got {keys!r}"
                )
        for name in ("policy_hidden", "prior_hidden", "critic_hidden"):
            widths = getattr(self, name)
            if not _tuple_of(widths, lambda w: number_problem("", w, ">= 1", integer=True) is None):
                found[name] = (
                    f"{name} must be a non-empty tuple of integers >= 1 (the widths of the "
                    f"hidden layers), got {widths!r}"
                )
        if not isinstance(self.distral_task_key, str) or not self.distral_task_key:
            found["distral_task_key"] = (
                "distral_task_key must be a non-empty string (an observation key), got "
                f"{self.distral_task_key!r}"
            )
        return {name: problem for name, problem in found.items() if problem is not None}

    def _combination_problems(self, bad: set[str]) -> list[str]:
        """Fields that do not go together (``bad``: fields already refused on their own)."""
        problems = []
        if (self.policy == "distral") != (self.prior == "distilled"):
            problems.append(
                "policy='distral' goes with prior='distilled' (Distral's pi0 is part of its "
                "policy module), and only with it"
            )
        if self.prior == "hierarchical" and self.policy != "hierarchical":
            problems.append(
                "a hierarchical prior needs a hierarchical policy "
                "(the latent must mean the same thing to both)"
            )
        if self.prior == "flat" and self.policy != "flat":
            problems.append(
                "a flat prior needs a flat policy: the KL between a latent-variable "
                "policy and a flat prior has no tractable bound; use "
                "prior='hierarchical'"
            )
        if self.low_level == "separate" and self.prior != "hierarchical":
            problems.append("low_level='separate' only applies to a hierarchical prior")
        if self.critic_uses_latent and self.policy != "hierarchical":
            problems.append("critic_uses_latent needs a hierarchical policy")
        if self.stop_q_grad_into_latent and self.policy != "hierarchical":
            problems.append("stop_q_grad_into_latent needs a hierarchical policy")
        elif self.stop_q_grad_into_latent and not self.critic_uses_latent:
            problems.append(
                "stop_q_grad_into_latent needs critic_uses_latent=True: with the gradient "
                "through the action into z cut, only a critic Q(x, z, a) can still train pi^H, "
                "the level that sees the task"
            )
        if self.target_entropy is not None and "target_entropy" not in bad:
            if self.policy == "distral":
                problems.append(
                    "target_entropy: Distral's entropy cost c_Ent is part of its method"
                )
            elif "entropy_cost" not in bad and self.entropy_cost <= 0:
                problems.append(
                    "target_entropy needs entropy_cost > 0: it is alpha_H's starting value, "
                    "learned in log space"
                )
        return problems

    def _frozen_problems(self) -> list[str]:
        if isinstance(self.frozen, str):
            return [f"frozen must be a tuple of module names, got the string {self.frozen!r}"]
        if not isinstance(self.frozen, tuple):
            return [f"frozen must be a tuple of module names, got {self.frozen!r}"]
        problems = []
        for name in self.frozen:
            if name not in FREEZABLE:
                problems.append(f"frozen: unknown module {name!r} (one of {', '.join(FREEZABLE)})")
            elif name in ("policy.distilled", "policy.columns") and self.policy != "distral":
                problems.append(f"frozen: {name!r} needs policy='distral'")
            elif name in ("policy.high", "policy.low") and self.policy != "hierarchical":
                problems.append(f"frozen: {name!r} needs a hierarchical policy")
            elif name.startswith("prior") and self.prior in ("none", "distilled"):
                problems.append(
                    f"frozen: {name!r} but the agent has no separate prior "
                    "(Distral: policy.distilled)"
                )
            elif name == "prior.high" and self.prior != "hierarchical":
                problems.append("frozen: 'prior.high' needs a hierarchical prior")
            elif name == "prior.low" and self.low_level != "separate":
                problems.append(
                    "frozen: 'prior.low' needs low_level='separate' (a shared low level is "
                    "'policy.low')"
                )
        return problems

    @property
    def soft_value(self) -> bool:
        """Whether the bootstrap value includes the entropy bonus (``entropy_in_value``
        resolved: by default only for Distral)."""
        if self.entropy_in_value is None:
            return self.policy == "distral"
        return bool(self.entropy_in_value)

    @property
    def autoregressive_high_level(self) -> bool:
        """Whether pi^H reads z_{t-1}: it must, to follow an autoregressive high-level prior
        (AR(1) or learned AR), whose mean depends on z_{t-1}."""
        return (
            self.policy == "hierarchical"
            and self.prior == "hierarchical"
            and self.high_prior in ("ar1", "learned_ar")
        )

    @property
    def latent_size(self) -> int:
        """Width of the latent stored in replay (0 for flat policies)."""
        return self.latent_dim if self.policy == "hierarchical" else 0

    def replace(self, **changes) -> SVG0Config:
        return dataclasses.replace(self, **changes)


def _tuple_of(value: Any, ok: Any) -> bool:
    """Whether ``value`` is a non-empty tuple whose items all pass ``ok``."""
    return isinstance(value, tuple) and len(value) > 0 and all(ok(v) for v in value)
