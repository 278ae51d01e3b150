"""Distral's policies (Teh et al. 2017; docs/paper.md section 6) as one module: a column per task
and the shared distilled policy pi0, for discrete actions.

* ``two_column=False`` ("1-col"): ``pi_i = softmax(f_i(x))``, every task its own network.
* ``two_column=True`` ("2-col"): ``pi_i = softmax(alpha h0(x) + beta f_i(x))`` and
  ``pi0 = softmax(h0(x))``: the task columns learn what to add to the shared behaviour, and a
  fresh column (output near 0) starts as ``pi0^alpha``.

The column network outputs ``g_i = beta f_i`` (beta is absorbed into it). The policies are the
same family, but trained by gradient steps (actor-critic) the factor matters: with c_KL = c_Ent
= 0.01 (beta = 50) a column whose output is multiplied by beta made every pi_i deterministic
within a few thousand updates (entropy 0.007 to 0.000) and the four-room world was never
solved. In the paper's soft Q-learning variant f_i is a soft Q-function regressed on targets,
where the factor is the temperature; here it would only be a learning-rate multiplier.

``pi0`` lives inside the module (not in a separate prior) because in the 2-col form every
``pi_i`` is built from ``h0``: Distral optimises ``h0`` through both ``pi_i`` and the KL term,
so the policy loss of :mod:`behavior_priors.agents.svg0` trains all of it at once.

The task of a state is read from a one-hot observation (``task_key``, e.g. the grid world's
``task/goal_index``); each column is its own network. With a few tasks every column runs on
every state and the state's own is selected (K times one network's compute); with many, each
state gathers its task's parameters, so the compute does not grow with K (measured on the
four-room world, K = 104: 36 ms per update by gathering, against 4 ms for a flat policy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from behavior_priors.networks.categorical_net import CategoricalNet
from behavior_priors.networks.policies import FlatActing
from behavior_priors.ops.distributions import Categorical

Array = jax.Array

# Up to this many tasks, run every column on every state instead of gathering parameters.
_ALL_COLUMNS_UP_TO = 16


class DistralPolicy(FlatActing):
    """Per-task policies ``pi_i(a|x)`` and the distilled ``pi0(a|x)`` over ``num_actions``.

    Args:
      keys: observation keys the columns and ``h0`` read (the state; not the task).
      task_key: a one-hot observation ``[..., K]`` naming the task; K columns are built.
      obs_shapes: ``{key: shape}``.
      num_actions: A.
      hidden: torso sizes of every network.
      key: PRNG key.
      two_column: the 2-col parameterisation (else 1-col).
      alpha, beta: the 2-col coefficients, ``c_KL / (c_KL + c_Ent)`` and ``1 / (c_KL + c_Ent)``
        (beta is kept to read ``f_i = column / beta``; see the module docstring).
    """

    distilled: CategoricalNet  # h0
    columns: CategoricalNet  # f_i: every array has a leading task axis [K, ...]
    task_key: str = eqx.field(static=True)
    num_tasks: int = eqx.field(static=True)
    two_column: bool = eqx.field(static=True)
    alpha: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    latent_size: int = eqx.field(static=True)
    discrete: bool = eqx.field(static=True)

    def __init__(
        self,
        keys: Sequence[str],
        task_key: str,
        obs_shapes: Mapping[str, tuple[int, ...]],
        num_actions: int,
        hidden: Sequence[int],
        key: Array,
        two_column: bool = True,
        alpha: float = 1.0,
        beta: float = 1.0,
    ):
        if task_key not in obs_shapes or len(obs_shapes[task_key]) != 1:
            raise ValueError(
                f"Distral needs a one-hot task observation {task_key!r} of shape [K]; "
                f"the observations are {sorted(obs_shapes)}"
            )
        if beta <= 0 or not 0 <= alpha <= 1:
            raise ValueError(f"need 0 <= alpha <= 1 and beta > 0, got {alpha}, {beta}")
        k0, kc = jax.random.split(key)
        self.num_tasks = int(obs_shapes[task_key][0])
        self.distilled = CategoricalNet(keys, obs_shapes, num_actions, hidden, k0)

        def column(k):
            return CategoricalNet(keys, obs_shapes, num_actions, hidden, k)

        self.columns = eqx.filter_vmap(column)(jax.random.split(kc, self.num_tasks))
        self.task_key = task_key
        self.two_column = bool(two_column)
        self.alpha, self.beta = float(alpha), float(beta)
        self.latent_size = 0
        self.discrete = True

    def column_logits(self, obs: Mapping[str, Array]) -> Array:
        """The output of each state's own task column: ``[..., A]`` for observations
        ``[..., *shape]``; ``beta f_i(x)`` in the 2-col form, ``pi_i``'s logits in the 1-col."""
        onehot = obs[self.task_key]  # [..., K]
        if self.num_tasks <= _ALL_COLUMNS_UP_TO:
            params, static = eqx.partition(self.columns, eqx.is_array)
            every = jax.vmap(lambda p: eqx.combine(p, static).logits(obs))(params)  # [K, ..., A]
            # Only the state's own column gets a gradient: the others are multiplied by 0.
            return jnp.einsum("k...a,...k->...a", every, onehot)
        task = jnp.argmax(onehot, axis=-1)  # [...]
        lead = task.shape
        flat = {k: jnp.reshape(obs[k], (-1, *obs[k].shape[len(lead) :])) for k in self.columns.keys}
        params, static = eqx.partition(self.columns, eqx.is_array)
        picked = jax.tree.map(lambda w: w[jnp.reshape(task, (-1,))], params)  # [N, ...]
        logits = jax.vmap(lambda p, o: eqx.combine(p, static).logits(o))(picked, flat)
        return jnp.reshape(logits, (*lead, logits.shape[-1]))

    def prior(self, obs: Mapping[str, Array]) -> Categorical:
        """The distilled policy ``pi0 = softmax(h0(x))``."""
        return self.distilled(obs)

    def __call__(self, obs: Mapping[str, Array]) -> Categorical:
        """``pi_i(.|x)`` of each state's task."""
        g = self.column_logits(obs)  # beta f_i (2-col) or pi_i's logits (1-col)
        if not self.two_column:
            return Categorical(g)
        return Categorical(self.alpha * self.distilled.logits(obs) + g)
