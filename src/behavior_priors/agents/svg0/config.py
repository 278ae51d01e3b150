"""Configuration of the SVG(0) agent with a (hierarchical) behaviour prior."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

PolicyKind = Literal["flat", "hierarchical", "distral"]
PriorKind = Literal["none", "flat", "hierarchical", "distilled"]
DistralColumns = Literal["1col", "2col"]
LowLevel = Literal["shared", "separate"]
HighPriorKind = Literal["learned", "normal", "ar1", "learned_ar"]

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
    """Every choice of PAPER.md sections 1-3. Defaults: hierarchical policy and prior with a
    shared low level and a learned high-level prior that sees only proprioception.

    Observation keys are exact keys or prefixes ending in ``/`` (see
    :mod:`behavior_priors.networks.observations`).

    The action space (continuous box or discrete) comes from the environment, not from here:
    with discrete actions the flat policy, the low levels and the flat prior are categorical,
    the critic outputs one value per action and the losses take exact expectations over actions.

    Distral (PAPER.md section 6, discrete actions only) is ``policy="distral"`` with
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
        problems = []
        if (self.policy == "distral") != (self.prior == "distilled"):
            problems.append(
                "policy='distral' goes with prior='distilled' (Distral's pi0 is part of its "
                "policy module), and only with it"
            )
        if self.distral_columns not in ("1col", "2col"):
            problems.append(
                f"distral_columns must be '1col' or '2col', got {self.distral_columns!r}"
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
        if self.latent_dim <= 0:
            problems.append(f"latent_dim must be positive, got {self.latent_dim}")
        if self.latent_hold_steps < 1:
            problems.append(f"latent_hold_steps must be >= 1, got {self.latent_hold_steps}")
        if not 0.0 <= self.ar1_coefficient < 1.0:
            problems.append(f"ar1_coefficient must be in [0, 1), got {self.ar1_coefficient}")
        if not 0.0 < self.discount <= 1.0:
            problems.append(f"discount must be in (0, 1], got {self.discount}")
        if not 0.0 <= self.retrace_lambda <= 1.0:
            problems.append(f"retrace_lambda must be in [0, 1], got {self.retrace_lambda}")
        tau = self.target_update_rate
        if tau is not None and (
            isinstance(tau, bool) or not isinstance(tau, int | float) or not 0.0 < tau <= 1.0
        ):
            problems.append(f"target_update_rate must be None or in (0, 1], got {tau!r}")
        if self.target_entropy is not None:
            if self.policy == "distral":
                problems.append(
                    "target_entropy: Distral's entropy cost c_Ent is part of its method"
                )
            elif self.entropy_cost <= 0:
                problems.append(
                    "target_entropy needs entropy_cost > 0: it is alpha_H's starting value, "
                    "learned in log space"
                )
            if not math.isfinite(self.target_entropy):
                problems.append(f"target_entropy must be finite, got {self.target_entropy}")
        if not self.entropy_learning_rate > 0:
            problems.append(f"entropy_learning_rate must be > 0, got {self.entropy_learning_rate}")
        for name in ("kl_cost", "entropy_cost", "min_scale", "saturation_cost"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        for name in (
            "num_action_samples",
            "num_policy_samples",
            "num_kl_samples",
            "target_update_period",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        problems += self._frozen_problems()
        if problems:
            raise ValueError("invalid SVG0Config: " + "; ".join(problems))

    def _frozen_problems(self) -> list[str]:
        if isinstance(self.frozen, str):
            return [f"frozen must be a tuple of module names, got the string {self.frozen!r}"]
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
