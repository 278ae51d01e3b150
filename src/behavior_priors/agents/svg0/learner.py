"""The learner: one jitted step doing the critic, policy and prior updates.

Its whole state is one pytree, :class:`TrainState`, so it can be checkpointed and vmapped over
seeds (``eqx.filter_vmap(update)``). All three gradients are taken at the same parameters (the
policy uses the online critic and the target prior), then applied with separate optimisers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from behavior_priors.agents.arrays import ArrayLayout
from behavior_priors.agents.svg0.config import SVG0Config
from behavior_priors.agents.svg0.losses import critic_loss, policy_loss, prior_loss
from behavior_priors.agents.svg0.networks import SVG0Networks, make_networks
from behavior_priors.agents.types import SequenceBatch

Array = jax.Array


class EntropyState(NamedTuple):
    """The learned entropy cost (``SVG0Config.target_entropy``): log alpha_H and its Adam."""

    log_alpha: Array  # float32 scalar
    opt: Any


class TrainState(NamedTuple):
    """Everything the learner needs to continue: a pytree of arrays and static structure.

    ``entropy`` is ``None`` unless the config learns alpha_H; a ``None`` field has no leaves,
    so checkpoints of fixed-alpha runs keep their layout."""

    networks: SVG0Networks
    target: SVG0Networks
    critic_opt: Any
    policy_opt: Any
    prior_opt: Any
    step: Array  # int32 scalar: learner steps done
    key: Array
    entropy: EntropyState | None = None


def _optimiser(learning_rate: float, max_grad_norm: float) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))


def optimisers(config: SVG0Config) -> tuple[optax.GradientTransformation, ...]:
    """(critic, policy, prior) optimisers: Adam after global-norm clipping."""
    return (
        _optimiser(config.critic_learning_rate, config.max_grad_norm),
        _optimiser(config.policy_learning_rate, config.max_grad_norm),
        _optimiser(config.prior_learning_rate, config.max_grad_norm),
    )


def entropy_optimiser(config: SVG0Config) -> optax.GradientTransformation:
    """Adam on log alpha_H (``config.entropy_learning_rate``)."""
    return optax.adam(config.entropy_learning_rate)


def initial_entropy_state(config: SVG0Config) -> EntropyState | None:
    """log alpha_H = log ``entropy_cost`` when ``config.target_entropy`` is set, else None."""
    if config.target_entropy is None:
        return None
    log_alpha = jnp.log(jnp.asarray(config.entropy_cost, jnp.float32))
    return EntropyState(log_alpha, entropy_optimiser(config).init(log_alpha))


def entropy_cost(config: SVG0Config, state: TrainState) -> Array | float:
    """alpha_H of this learner state: learned, or ``config.entropy_cost``."""
    if state.entropy is None:
        return config.entropy_cost
    return jnp.exp(state.entropy.log_alpha)


def update_entropy(
    config: SVG0Config, entropy: EntropyState | None, policy_entropy: Array
) -> EntropyState | None:
    """One Adam step on SAC's temperature loss ``log(alpha_H) (H - target)``, whose gradient
    in log alpha_H is ``H - target``: alpha_H falls while the policy's entropy ``H`` (a scalar,
    the batch mean) is above the target and rises while it is below."""
    if entropy is None:
        return None
    grad = jax.lax.stop_gradient(policy_entropy - config.target_entropy).astype(jnp.float32)
    updates, opt = entropy_optimiser(config).update(grad, entropy.opt, entropy.log_alpha)
    return EntropyState(optax.apply_updates(entropy.log_alpha, updates), opt)


def _params(module: Any) -> Any:
    return eqx.filter(module, eqx.is_inexact_array)


def init(
    config: SVG0Config,
    obs_shapes: Mapping[str, tuple[int, ...]],
    action_size: int,
    key: Array,
    discrete: bool = False,
) -> TrainState:
    """Fresh networks, targets equal to them, and zeroed optimiser states. ``action_size`` is
    the number of actions when ``discrete``."""
    k_net, k_state = jax.random.split(key)
    nets = make_networks(config, obs_shapes, action_size, k_net, discrete)
    return state_from_networks(config, nets, k_state)


def copy_arrays(tree: Any) -> Any:
    """``tree`` with every array copied into a new buffer (other leaves kept)."""
    return jax.tree.map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, tree)


def state_from_networks(config: SVG0Config, nets: SVG0Networks, key: Array) -> TrainState:
    """A learner state at step 0 for given networks: targets equal to them, zeroed optimiser
    states (``init``, and transfer after grafting trained modules in)."""
    opt_c, opt_p, opt_q = optimisers(config)
    return TrainState(
        networks=nets,
        # A copy, not the same buffers: a donating update cannot take one buffer twice.
        target=copy_arrays(nets),
        critic_opt=opt_c.init(_params(nets.critic)),
        policy_opt=opt_p.init(_params(nets.policy)),
        prior_opt=opt_q.init(_params(nets.prior)),
        step=jnp.zeros((), jnp.int32),
        key=key,
        entropy=initial_entropy_state(config),
    )


def _apply(opt: optax.GradientTransformation, module: Any, grads: Any, opt_state: Any):
    updates, opt_state = opt.update(grads, opt_state, _params(module))
    return eqx.apply_updates(module, updates), opt_state


# Where each name of ``SVG0Config.frozen`` lives in ``SVG0Networks``.
MODULES = {
    "policy": lambda n: n.policy,
    "policy.high": lambda n: n.policy.high,
    "policy.low": lambda n: n.policy.low,
    "policy.distilled": lambda n: n.policy.distilled,
    "policy.columns": lambda n: n.policy.columns,
    "prior": lambda n: n.prior,
    "prior.high": lambda n: n.prior.high,
    "prior.low": lambda n: n.prior.low,
    "critic": lambda n: n.critic,
}


def keep_frozen(new: SVG0Networks, old: SVG0Networks, frozen: tuple[str, ...]) -> SVG0Networks:
    """``new`` with the modules named in ``frozen`` (``SVG0Config.frozen``) put back to ``old``.

    Gradients still flow through frozen modules (a frozen shared low level passes the policy
    gradient on to z); only their own parameter updates are dropped, so they stay bit-identical.
    """
    for name in frozen:
        get = MODULES[name]
        new = eqx.tree_at(get, new, get(old), is_leaf=lambda x: x is None)
    return new


def prior_frozen(config: SVG0Config) -> bool:
    """Whether ``config.frozen`` leaves no parameter of the prior to train: the flat prior, or a
    hierarchical prior's high level with a shared (or also frozen) low level."""
    frozen = set(config.frozen)
    if config.prior in ("none", "distilled") or "prior" in frozen:
        return True
    if config.prior == "flat":
        return False
    return "prior.high" in frozen and (config.low_level == "shared" or "prior.low" in frozen)


def update_target(
    config: SVG0Config, target: SVG0Networks, online: SVG0Networks, step: Array
) -> SVG0Networks:
    """The target networks after learner step ``step`` (counted from 1): Polyak averaging
    ``tau * online + (1 - tau) * target`` when ``config.target_update_rate`` is tau, otherwise
    a hard copy of ``online`` every ``config.target_update_period`` steps. A frozen module is the
    same in both, so its target stays bit-identical either way."""
    tau = config.target_update_rate
    if tau is not None:
        new = jax.tree.map(
            lambda t, o: t + tau * (o - t) if tau < 1.0 else o, _params(target), _params(online)
        )
    else:
        copy = (step % config.target_update_period) == 0
        new = jax.tree.map(lambda t, o: jnp.where(copy, o, t), _params(target), _params(online))
    return eqx.combine(new, eqx.filter(target, eqx.is_inexact_array, inverse=True))


def update(
    config: SVG0Config, state: TrainState, batch: SequenceBatch
) -> tuple[TrainState, dict[str, Array]]:
    """One learner step on a batch ``[B, T+1, ...]``: critic, policy and prior updates, then the
    target update (:func:`update_target`). Pure; jit it with the
    config static (see :func:`make_update_fn`)."""
    nets, target = state.networks, state.target
    key, k_c, k_p, k_q = jax.random.split(state.key, 4)
    opt_c, opt_p, opt_q = optimisers(config)

    alpha_h = entropy_cost(config, state)
    (_, m_c), g_c = eqx.filter_value_and_grad(critic_loss, has_aux=True)(
        nets.critic, target, batch, k_c, config, alpha_h
    )
    (_, m_p), g_p = eqx.filter_value_and_grad(policy_loss, has_aux=True)(
        nets.policy, nets.critic, target.prior, batch, k_p, config, alpha_h
    )
    if prior_frozen(config):
        # Nothing of the prior trains (a transferred, frozen prior): its loss is still logged,
        # but its gradient, which would be thrown away, is not computed.
        _, m_q = prior_loss(nets.prior, nets.policy, batch, k_q, config)
        g_q, prior, prior_opt = None, nets.prior, state.prior_opt
    else:
        (_, m_q), g_q = eqx.filter_value_and_grad(prior_loss, has_aux=True)(
            nets.prior, nets.policy, batch, k_q, config
        )
        prior, prior_opt = _apply(opt_q, nets.prior, g_q, state.prior_opt)

    critic, critic_opt = _apply(opt_c, nets.critic, g_c, state.critic_opt)
    policy, policy_opt = _apply(opt_p, nets.policy, g_p, state.policy_opt)
    new_nets = keep_frozen(SVG0Networks(policy, prior, critic), nets, config.frozen)

    step = state.step + 1
    new_target = update_target(config, target, new_nets, step)

    metrics = {**m_c, **m_p, **m_q}
    metrics["grads/critic_norm"] = optax.tree.norm(g_c)
    metrics["grads/policy_norm"] = optax.tree.norm(g_p)
    metrics["grads/prior_norm"] = optax.tree.norm(g_q) if g_q is not None else jnp.zeros(())
    if state.entropy is not None:
        metrics["policy/entropy_cost"] = alpha_h
    entropy = update_entropy(config, state.entropy, m_p["policy/entropy"])
    new_state = TrainState(
        new_nets, new_target, critic_opt, policy_opt, prior_opt, step, key, entropy
    )
    return new_state, metrics


@functools.lru_cache(maxsize=16)
def _compiled_updates(config: SVG0Config) -> tuple[Any, Any, dict]:
    """Per config: the plain jitted update, the function to jit with donation, and the cache of
    its compiled forms, which every donating update of this config shares."""

    def _update(state: TrainState, batch: SequenceBatch):
        return update(config, state, batch)

    return eqx.filter_jit(_update), _update, {}


def make_update_fn(config: SVG0Config, donate: bool = False):
    """``update(state, batch) -> (state, metrics)``, jitted, with ``config`` baked in. The
    compiled code is cached per config, so runs with the same agent config in one process share
    it.

    ``donate=True`` hands the input state's buffers to XLA, which writes the new state into them
    (no allocation and copy of every parameter and Adam moment per step) and skips
    ``eqx.filter_jit``'s per-call bookkeeping: about 15% faster per update on the CPU
    (``docs/benchmarks.md``). The caller must then drop the old state: its arrays are deleted.
    Called with a state, the donating update takes it apart into its arrays and puts the new
    one together (host time, about 0.4 ms for the demo's state): a loop that updates many
    times keeps the state as arrays instead (:class:`InPlaceLearner`, which the run loops use).
    Keep the default when you compare states before and after.
    """
    plain, fn, compiled = _compiled_updates(config)
    return _DonatingUpdate(fn, compiled) if donate else plain


class _DonatingUpdate:
    """``jax.jit`` over the state's array leaves with buffer donation. The non-array leaves
    (activation functions, sizes) and the tree structure are the static part
    (:class:`~behavior_priors.agents.arrays.ArrayLayout`): one compiled function per layout (in
    ``compiled``, shared), like ``eqx.filter_jit`` but without re-partitioning modules on the
    hot path."""

    def __init__(self, fn, compiled: dict[ArrayLayout, Any]):
        self._fn = fn
        self._compiled = compiled

    def __call__(self, state: TrainState, batch: SequenceBatch):
        fn, arrays, layout = self.split(state)
        new_arrays, metrics = fn(arrays, batch)
        return layout.merge(new_arrays), metrics

    def lower(self, state: TrainState, batch: SequenceBatch) -> jax.stages.Lowered:
        """The lowered computation this object runs for ``state`` and ``batch`` (nothing is
        executed or donated): ``.compile().as_text()`` is the module a profile's thunks name."""
        fn, arrays, _ = self.split(state)
        return fn.lower(arrays, batch)

    def split(self, state: TrainState):
        """``(step, arrays, layout)``: the jitted ``step(arrays, batch) -> (new arrays,
        metrics)`` for ``state``'s layout (built once per layout), which donates ``arrays``,
        and ``state`` taken apart into its arrays and layout."""
        arrays, layout = ArrayLayout.split(state)
        fn = self._compiled.get(layout)
        if fn is None:
            fn = self._compiled[layout] = self._build(layout)
        return fn, arrays, layout

    def _build(self, layout: ArrayLayout):
        update = self._fn  # not self: the shared compiled function must not keep this object

        def step(arrays, batch):
            new_state, metrics = update(layout.merge(arrays), batch)
            new_arrays, new_layout = ArrayLayout.split(new_state)
            if new_layout.treedef != layout.treedef:  # the update never changes the structure
                raise AssertionError(f"update changed the state's structure: {new_layout}")
            return new_arrays, metrics

        return jax.jit(step, donate_argnums=0)


def policy_prefix(state: TrainState) -> tuple[int, ArrayLayout]:
    """``(n, policy_layout)``: the policy's arrays are the first ``n`` of ``state``'s arrays
    in :class:`ArrayLayout` order (so also of those arrays stacked over seeds), and
    ``policy_layout`` puts them back together. The policy is the state's first field's first
    field, so its arrays come first; ``AssertionError`` if a change to the state breaks that."""
    policy, layout = ArrayLayout.split(state.networks.policy)
    if any(a is not b for a, b in zip(policy, ArrayLayout.split(state)[0], strict=False)):
        raise AssertionError("the policy's arrays are not the first of the learner state's")
    return len(policy), layout


class InPlaceLearner:
    """The learner state of one run loop, advanced in place by the donating update.

    The state is kept as the arrays the compiled update takes and returns, and the
    :class:`TrainState` is rebuilt from them only when it is read (:attr:`state`), not after
    every update: rebuilding its equinox modules in Python took about 0.16 ms of host time per
    update, taken from the update on the same 2 cores (docs/benchmarks.md, "The host's share of
    the two cores"). The actor reads the policy's arrays directly (:meth:`policy_arrays`, for
    ``behavior_priors.training.acting.make_array_actor``). As with ``make_update_fn(...,
    donate=True)``, an update deletes the arrays of the state before it: a :attr:`state` read
    earlier is then unusable (copy what you keep).
    """

    def __init__(self, config: SVG0Config, state: TrainState):
        self._update = make_update_fn(config, donate=True)
        self.reset(state)

    def reset(self, state: TrainState) -> None:
        """Continue from ``state`` (a fresh, restored or transferred one); its arrays are
        donated by the next update."""
        self._step, self._arrays, self._layout = self._update.split(state)
        self._state: TrainState | None = state
        self._num_policy, self.policy_layout = policy_prefix(state)

    @property
    def state(self) -> TrainState:
        """The current learner state (rebuilt on the first read after an update)."""
        if self._state is None:
            self._state = self._layout.merge(self._arrays)
        return self._state

    def update(self, batch: SequenceBatch) -> dict[str, Array]:
        """One learner step on ``batch`` (dispatched, not waited for); returns its metrics. If
        the call fails before running (a batch of the wrong layout), the state is unchanged."""
        new_arrays, metrics = self._step(self._arrays, batch)
        self._arrays, self._state = new_arrays, None
        return metrics

    def policy_arrays(self) -> list[Array]:
        """The policy's arrays, in the order of :attr:`policy_layout`."""
        return self._arrays[: self._num_policy]

    def lower(self, batch: SequenceBatch) -> jax.stages.Lowered:
        """The lowered update for the current state and ``batch`` (nothing runs)."""
        return self._step.lower(self._arrays, batch)


def check_finite(metrics: Mapping[str, Any], step: int) -> None:
    """Raise ``FloatingPointError`` naming every non-finite metric (a diverged update)."""
    bad = [k for k, v in metrics.items() if not math.isfinite(float(v))]
    if bad:
        raise FloatingPointError(
            f"learner step {step}: non-finite {', '.join(sorted(bad))}. The update diverged; "
            "lower the learning rates, raise min_scale or max_grad_norm clipping, and resume "
            "from the last checkpoint."
        )


def parameter_count(module: Any) -> int:
    """Number of trainable scalars in a module (or ``SVG0Networks``)."""
    return sum(x.size for x in jax.tree.leaves(_params(module)))
