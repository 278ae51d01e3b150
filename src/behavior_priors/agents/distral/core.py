"""Distral's objective in pieces (docs/paper.md section 6), numpy, for discrete actions.

For task i, with costs ``c_kl`` and ``c_ent``::

    J_i = E_{pi_i}[ sum_t gamma^t ( r_t - c_kl log(pi_i / pi0) - c_ent log pi_i ) ]
        = E_{pi_i}[ sum_t gamma^t ( r_t + (alpha / beta) log pi0 - (1 / beta) log pi_i ) ]

with ``alpha = c_kl / (c_kl + c_ent)`` and ``beta = 1 / (c_kl + c_ent)``. Given pi0, the best
pi_i is ``pi_i(a|s) = pi0(a|s)^alpha exp(beta Q_i(s, a)) / exp(beta V_i(s))`` with the soft value
``V_i(s) = (1/beta) log sum_a pi0(a|s)^alpha exp(beta Q_i(s, a))`` and ``Q_i(s, a) = r(s, a) +
gamma E[V_i(s')]``. Given the pi_i, the best pi0 maximises ``sum_i E_{pi_i}[sum_t gamma^t log
pi0(a_t|s_t)]``: the average of the pi_i weighted by their discounted state visitations.

The 2-column parameterisation writes ``pi0 = softmax(h0)`` and ``pi_i = softmax(alpha h0 + beta
f_i)``; with ``h0 = log pi0`` and ``f_i = Q_i`` it is exactly the best pi_i above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DistralCosts:
    """KL and entropy costs; ``c_ent = 0`` is Distral "without the entropy term"."""

    c_kl: float = 0.5
    c_ent: float = 0.0

    def __post_init__(self):
        if self.c_kl < 0 or self.c_ent < 0 or self.c_kl + self.c_ent <= 0:
            raise ValueError(
                f"Distral needs c_kl >= 0, c_ent >= 0 and c_kl + c_ent > 0; got c_kl="
                f"{self.c_kl}, c_ent={self.c_ent}"
            )

    @property
    def alpha(self) -> float:
        return self.c_kl / (self.c_kl + self.c_ent)

    @property
    def beta(self) -> float:
        return 1.0 / (self.c_kl + self.c_ent)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def regularised_reward(
    reward: np.ndarray, log_pi: np.ndarray, log_pi0: np.ndarray, costs: DistralCosts
) -> np.ndarray:
    """``r - c_kl (log pi_i - log pi0) - c_ent log pi_i`` of the actions taken, elementwise."""
    return reward - costs.c_kl * (log_pi - log_pi0) - costs.c_ent * log_pi


def soft_value(q: np.ndarray, log_pi0: np.ndarray, costs: DistralCosts) -> np.ndarray:
    """``V(s) = (1/beta) log sum_a pi0(a|s)^alpha exp(beta Q(s, a))``.

    Args:
      q, log_pi0: ``[..., A]``.

    Returns:
      ``[...]``.
    """
    x = costs.alpha * log_pi0 + costs.beta * q
    m = x.max(axis=-1)
    return (m + np.log(np.exp(x - m[..., None]).sum(axis=-1))) / costs.beta


def task_policy(q: np.ndarray, log_pi0: np.ndarray, costs: DistralCosts) -> np.ndarray:
    """The best pi_i given its soft Q and pi0: ``softmax(alpha log pi0 + beta Q)``, ``[..., A]``."""
    return np.exp(_log_softmax(costs.alpha * log_pi0 + costs.beta * q))


def two_column_policy(
    h0: np.ndarray, f: np.ndarray, costs: DistralCosts
) -> tuple[np.ndarray, np.ndarray]:
    """The 2-column parameterisation: ``(pi_i, pi0) = (softmax(alpha h0 + beta f), softmax(h0))``.

    Args:
      h0: ``[..., A]`` shared column (logits of pi0).
      f: ``[..., A]`` task column.
    """
    return (
        np.exp(_log_softmax(costs.alpha * h0 + costs.beta * f)),
        np.exp(_log_softmax(h0)),
    )


def distill_policy(pis: np.ndarray, visitation: np.ndarray, floor: float = 1e-8) -> np.ndarray:
    """pi0 maximising ``sum_i sum_s rho_i(s) sum_a pi_i(a|s) log pi0(a|s)``: per state, the
    average of the pi_i weighted by ``rho_i(s)``; uniform where no task goes.

    Args:
      pis: ``[N, S, A]`` task policies.
      visitation: ``[N, S]`` discounted state visitations rho_i.
      floor: smallest probability kept (pi0 must stay positive for the KL to pi_i to exist).
    """
    w = visitation[:, :, None]
    total = w.sum(axis=0)  # [S, 1]
    num = (w * pis).sum(axis=0)
    a = pis.shape[-1]
    pi0 = np.where(total > 0, num / np.maximum(total, 1e-300), 1.0 / a)
    pi0 = np.maximum(pi0, floor)
    return pi0 / pi0.sum(axis=-1, keepdims=True)
