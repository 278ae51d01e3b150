"""Tabular Distral: exact on a known MDP (the reference), and model-free from transitions.

Tasks share the dynamics ``P[s, a, s']`` and differ in their goal state: entering the goal earns
``goal_reward`` and ends the episode (as in :class:`behavior_priors.envs.gridworld.GridWorld`,
whose ``transition_matrix()`` and task ids these functions take).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from behavior_priors.agents.distral.core import (
    DistralCosts,
    distill_policy,
    soft_value,
    task_policy,
)


def soft_value_iteration(
    transitions: np.ndarray,
    goal: int,
    log_pi0: np.ndarray,
    costs: DistralCosts,
    gamma: float = 0.95,
    goal_reward: float = 1.0,
    step_reward: float = 0.0,
    tol: float = 1e-10,
    max_iters: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft Q and V of the task "enter ``goal``" given pi0 (the best pi_i's values).

    ``Q(s, a) = sum_s' P(s'|s, a) (r(s') + gamma V(s'))`` with ``V`` the soft value under pi0
    (:func:`~behavior_priors.agents.distral.core.soft_value`) and ``V(goal) = 0`` (terminal).

    Args:
      transitions: ``[S, A, S]``.
      log_pi0: ``[S, A]`` log-probabilities of pi0.

    Returns:
      ``(q [S, A], v [S])`` float64.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), got {gamma}")
    s = transitions.shape[0]
    reward_next = np.full(s, step_reward, np.float64)
    reward_next[goal] = goal_reward
    alive = np.ones(s)
    alive[goal] = 0.0
    v = np.zeros(s)
    for _ in range(max_iters):
        q = transitions @ (reward_next + gamma * alive * v)
        v_new = soft_value(q, log_pi0, costs)
        v_new[goal] = 0.0
        if np.max(np.abs(v_new - v)) < tol:
            return q, v_new
        v = v_new
    raise RuntimeError(f"soft value iteration did not converge in {max_iters} iterations")


def discounted_visitation(
    transitions: np.ndarray, pi: np.ndarray, start: np.ndarray, goal: int, gamma: float
) -> np.ndarray:
    """``rho(s) = sum_t gamma^t Pr(s_t = s)`` of ``pi`` from ``start``, counting only states
    where an action is taken (the goal ends the episode, so ``rho(goal) = 0``).

    Args:
      transitions: ``[S, A, S]``; pi: ``[S, A]``; start: ``[S]`` start distribution.
    """
    p_pi = np.einsum("sa,sat->st", pi, transitions)
    p_pi[goal] = 0.0  # nothing follows the goal
    start = start.copy()
    start[goal] = 0.0
    n = p_pi.shape[0]
    rho = np.linalg.solve((np.eye(n) - gamma * p_pi).T, start)
    rho[goal] = 0.0
    return rho


def _uniform_start(num_states: int, goal: int) -> np.ndarray:
    start = np.ones(num_states)
    start[goal] = 0.0
    return start / start.sum()


@dataclass
class DistralSolution:
    """Exact Distral: ``pi0 [S, A]``, ``pis [N, S, A]``, soft ``q [N, S, A]`` and ``v [N, S]``,
    and the objective ``sum_i E_start[V_i(s_0)]`` after each iteration (non-decreasing: both
    steps maximise it, one over the pi_i, one over pi0)."""

    pi0: np.ndarray
    pis: np.ndarray
    q: np.ndarray
    v: np.ndarray
    objective: list[float] = field(default_factory=list)


def solve_distral(
    transitions: np.ndarray,
    goals: Sequence[int],
    costs: DistralCosts,
    gamma: float = 0.95,
    iterations: int = 50,
    goal_reward: float = 1.0,
    step_reward: float = 0.0,
    starts: np.ndarray | None = None,
    tol: float = 1e-9,
) -> DistralSolution:
    """Alternate the best pi_i given pi0 (soft value iteration) and the best pi0 given the pi_i
    (visitation-weighted average), from a uniform pi0, until the objective stops changing.

    Args:
      goals: the tasks' goal states.
      starts: ``[N, S]`` start distributions (default: uniform over the states but the goal).
    """
    s, a, _ = transitions.shape
    n = len(goals)
    if starts is None:
        starts = np.stack([_uniform_start(s, g) for g in goals])
    pi0 = np.full((s, a), 1.0 / a)
    history: list[float] = []
    for _ in range(iterations):
        log_pi0 = np.log(pi0)
        qs, vs = zip(
            *(
                soft_value_iteration(
                    transitions, g, log_pi0, costs, gamma, goal_reward, step_reward
                )
                for g in goals
            ),
            strict=True,
        )
        q, v = np.stack(qs), np.stack(vs)
        pis = task_policy(q, log_pi0[None], costs)
        history.append(float(sum(starts[i] @ v[i] for i in range(n))))
        rho = np.stack(
            [
                discounted_visitation(transitions, pis[i], starts[i], g, gamma)
                for i, g in enumerate(goals)
            ]
        )
        pi0 = distill_policy(pis, rho)
        if len(history) > 1 and abs(history[-1] - history[-2]) < tol:
            break
    return DistralSolution(pi0, pis, q, v, history)


class TabularDistral:
    """Model-free tabular Distral trained from batches of transitions.

    Tables over states ``S`` (from a one-hot position) and tasks (the grid world's task ids):

    * soft ``Q [T, S, A]``, trained by soft Q-learning towards ``r + gamma V(s')``;
    * pi0's logits ``h0 [S, A]``, trained by distillation: a step up ``log pi0(a|s)`` for every
      ``(s, a)`` the task policies took;
    * ``variant="2col"``: ``pi_i = softmax(alpha h0 + beta Q_i)`` (the Q column is the task
      column; ``V(s')`` is the soft value under pi0), soft Q-learning proper;
    * ``variant="1col"``: pi_i has its own logits ``theta [T, S, A]``, trained by an exact policy
      gradient step on ``sum_a pi_i(a|s) (Q_i(s, a) + (alpha/beta) log pi0(a|s) - (1/beta) log
      pi_i(a|s))`` (actor-critic), and ``V(s')`` is that sum at ``s'`` (the critic evaluates
      pi_i).

    Args:
      num_states, num_tasks, num_actions: table sizes.
      costs: c_KL and c_Ent.
      gamma: discount.
      lr_q, lr_pi0, lr_pi: step sizes of the three tables.
    """

    def __init__(
        self,
        num_states: int,
        num_tasks: int,
        num_actions: int,
        costs: DistralCosts,
        variant: Literal["1col", "2col"] = "2col",
        gamma: float = 0.95,
        lr_q: float = 0.5,
        lr_pi0: float = 0.1,
        lr_pi: float = 0.5,
        seed: int = 0,
    ):
        if variant not in ("1col", "2col"):
            raise ValueError(f"variant must be '1col' or '2col', got {variant!r}")
        self.costs, self.variant, self.gamma = costs, variant, gamma
        self.lr_q, self.lr_pi0, self.lr_pi = lr_q, lr_pi0, lr_pi
        self.q = np.zeros((num_tasks, num_states, num_actions))
        self.h0 = np.zeros((num_states, num_actions))
        self.theta = np.zeros((num_tasks, num_states, num_actions))
        self.rng = np.random.default_rng(seed)

    def log_pi0(self, states: np.ndarray) -> np.ndarray:
        h = self.h0[states]
        h = h - h.max(axis=-1, keepdims=True)
        return h - np.log(np.exp(h).sum(axis=-1, keepdims=True))

    def policy(self, tasks: np.ndarray, states: np.ndarray) -> np.ndarray:
        """pi_i(.|s) ``[B, A]`` for task ids ``[B]`` and states ``[B]``."""
        if self.variant == "2col":
            return task_policy(self.q[tasks, states], self.log_pi0(states), self.costs)
        logits = self.theta[tasks, states]
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def act(self, tasks: np.ndarray, states: np.ndarray, greedy: bool = False) -> np.ndarray:
        pi = self.policy(tasks, states)
        if greedy:
            return pi.argmax(axis=-1)
        u = self.rng.random(len(pi))[:, None]
        return np.minimum((pi.cumsum(axis=-1) < u).sum(axis=-1), pi.shape[-1] - 1)

    def value(self, tasks: np.ndarray, states: np.ndarray) -> np.ndarray:
        """V_i(s) ``[B]``: the soft value under pi0 (2col) or the regularised value of pi_i
        (1col)."""
        q, log_pi0 = self.q[tasks, states], self.log_pi0(states)
        if self.variant == "2col":
            return soft_value(q, log_pi0, self.costs)
        pi = self.policy(tasks, states)
        c = self.costs
        return (pi * (q + (c.alpha * log_pi0 - np.log(np.maximum(pi, 1e-300))) / c.beta)).sum(-1)

    def update(
        self,
        tasks: np.ndarray,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_states: np.ndarray,
        discounts: np.ndarray,
    ) -> dict[str, float]:
        """One step on a batch of transitions ``[B]`` each (``discounts`` 0 at termination)."""
        c = self.costs
        target = rewards + self.gamma * discounts * self.value(tasks, next_states)
        td = target - self.q[tasks, states, actions]
        np.add.at(self.q, (tasks, states, actions), self.lr_q * td)
        # Distillation: d log softmax(h0)(a) / d h0 = onehot(a) - pi0.
        pi0 = np.exp(self.log_pi0(states))
        grad0 = -pi0
        grad0[np.arange(len(actions)), actions] += 1.0
        np.add.at(self.h0, states, self.lr_pi0 * grad0)
        if self.variant == "1col":
            pi = self.policy(tasks, states)
            g = self.q[tasks, states] + (c.alpha * self.log_pi0(states) - np.log(pi)) / c.beta
            # d/dtheta sum_a pi_a g_a (with g's own -log pi term): pi * (g - E_pi[g]).
            grad = pi * (g - (pi * g).sum(-1, keepdims=True))
            np.add.at(self.theta, (tasks, states), self.lr_pi * grad)
        return {"losses/td": float(np.mean(td**2))}


def train_on_gridworld(agent: TabularDistral, env, env_steps: int, seed: int = 0) -> dict:
    """Train ``agent`` on a :class:`~behavior_priors.envs.gridworld.GridWorld` (one-hot
    positions) for ``env_steps`` steps summed over its copies, one update per batched step.

    Returns:
      ``{"returns": [...], "successes": [...]}`` of the episodes that ended, in order.
    """
    if env.position_encoding != "onehot":
        raise ValueError("tabular Distral needs position_encoding='onehot' (exact states)")
    ts = env.reset(seed)
    returns, successes = [], []
    running = np.zeros(env.num_envs)
    for _ in range(max(1, env_steps // env.num_envs)):
        states = ts.observation["proprio/position"].argmax(-1)
        tasks = np.asarray(ts.task_id)
        actions = agent.act(tasks, states)
        nxt = env.step(actions)
        # Rows whose timestep was LAST hold no transition (the env auto-resets after them).
        live = ~ts.last()
        agent.update(
            tasks[live],
            states[live],
            actions[live],
            np.asarray(nxt.reward)[live],
            nxt.observation["proprio/position"].argmax(-1)[live],
            np.asarray(nxt.discount)[live],
        )
        running += np.where(live, nxt.reward, 0.0)
        for i in np.flatnonzero(nxt.last() & live):
            returns.append(float(running[i]))
            successes.append(bool(nxt.discount[i] == 0.0))
            running[i] = 0.0
        ts = nxt
    return {"returns": returns, "successes": successes}
