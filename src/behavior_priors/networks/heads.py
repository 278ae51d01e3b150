"""Distribution heads."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from behavior_priors.networks.layers import Linear
from behavior_priors.ops.distributions import DiagGaussian

Array = jax.Array


class GaussianHead(eqx.Module):
    """Features ``[..., F]`` -> ``DiagGaussian [..., D]``.

    ``scale = softplus(.) + min_scale``: the floor keeps the KL to a prior and the importance
    ratios of Retrace finite when a policy becomes confident. ``tanh_mean`` keeps action means
    inside the normalised action box [-1, 1]; action heads also bound the scale,
    ``scale = min_scale + (max_scale - min_scale) * sigmoid(.)``: the environment clips actions to
    the box, so a wider Gaussian only adds bang-bang noise at the bounds, yet the entropy bonus
    and a critic flat outside the box would otherwise let it grow without limit (observed: scales
    of 20 to 1000 within 20k steps).
    """

    loc: Linear
    scale: Linear
    min_scale: float = eqx.field(static=True)
    tanh_mean: bool = eqx.field(static=True)
    max_scale: float | None = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        key: Array,
        min_scale: float = 0.1,
        tanh_mean: bool = True,
        max_scale: float | None = None,
    ):
        k1, k2 = jax.random.split(key)
        # Small final layers start every policy near a broad, centred Gaussian.
        self.loc = Linear(in_size, out_size, k1, scale=0.01)
        self.scale = Linear(in_size, out_size, k2, scale=0.01)
        self.min_scale = float(min_scale)
        self.tanh_mean = bool(tanh_mean)
        if max_scale is not None and max_scale <= min_scale:
            raise ValueError(f"max_scale {max_scale} must exceed min_scale {min_scale}")
        self.max_scale = None if max_scale is None else float(max_scale)

    def preactivations(self, h: Array) -> tuple[Array, Array]:
        """The two linear outputs ``(loc_pre, scale_pre)``, each ``[..., D]``, before the
        squashing of :meth:`distribution`."""
        return self.loc(h), self.scale(h)

    def distribution(self, loc_pre: Array, scale_pre: Array) -> DiagGaussian:
        """The Gaussian ``[..., D]`` from :meth:`preactivations`."""
        # Squashed on rows flattened to [N, D], then given back their leading axes: with D of
        # 2-4 last, XLA's CPU loop for a softplus over the learner's [B, T+1, D] took about
        # 30 us for 352 x 4 values, over [N, D] about 4 (0.92-0.94x the demo's update;
        # docs/benchmarks.md, "Flat rows for the torsos").
        shape = loc_pre.shape
        loc_pre, scale_pre = loc_pre.reshape(-1, shape[-1]), scale_pre.reshape(-1, shape[-1])
        loc = jnp.tanh(loc_pre) if self.tanh_mean else loc_pre
        if self.max_scale is not None:
            # sigmoid(0) = 0.5: the initial scale is midway between the bounds.
            u = jax.nn.sigmoid(scale_pre)
            scale = self.min_scale + (self.max_scale - self.min_scale) * u
        else:
            # softplus(0) = log 2 ~ 0.69: the initial scale is about 0.7 + min_scale.
            scale = jax.nn.softplus(scale_pre) + self.min_scale
        return DiagGaussian(loc.reshape(shape), scale.reshape(shape))

    def __call__(self, h: Array) -> DiagGaussian:
        return self.distribution(*self.preactivations(h))


# Where a bounded action head's squashing stops passing gradient: tanh'(3) = 0.0099 and
# sigmoid'(3) = 0.045, against tanh'(10) = 8e-9. See saturation().
SATURATION_BOUND = 3.0


def saturation(preactivations: tuple[Array, Array], bound: float = SATURATION_BOUND) -> Array:
    """``0.5 sum_d [relu(|loc_pre_d| - bound)^2 + relu(|scale_pre_d| - bound)^2]``, ``[...]``,
    for a bounded action head's :meth:`GaussianHead.preactivations` ``([..., D], [..., D])``.

    Zero (and without gradient) inside the bound, so it does not bias a policy that stays there.
    Why it is needed: without an entropy bonus, a critic that keeps rising towards the edge of
    the action box pushes the tanh mean's pre-activation outwards for as long as it rises, and
    Adam, which normalises the gradient's size, keeps moving it at the learning rate however
    flat tanh has become. Pre-activations of 10 and more then pass no gradient back (tanh'(10)
    = 8e-9), the policy stops learning (its gradient norm falls 100-fold) and, when the critic
    changes its mind, it cannot follow. Measured: one run in 15 of the hierarchical agent on the
    learning test stayed at random-level returns that way (docs/agent.md). A hinge on the
    pre-activations bounds them where the gradient is still alive; SAC's first implementation
    put an L2 penalty (1e-3) on its pre-tanh mean and log-scale for the same reason.
    """
    return 0.5 * sum(
        jnp.sum(jnp.square(jax.nn.relu(jnp.abs(u) - bound)), axis=-1) for u in preactivations
    )


def saturated_fraction(
    preactivations: tuple[Array, Array], bound: float = SATURATION_BOUND
) -> Array:
    """The fraction of pre-activations beyond ``bound`` (a scalar diagnostic)."""
    return jnp.mean(jnp.stack([jnp.mean(jnp.abs(u) > bound) for u in preactivations]))
