"""Grafting trained modules into fresh networks: exact copies with shape checks that name what
differs, and a policy initialised to act like a prior (:func:`embed_net`)."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from behavior_priors.agents import svg0
from behavior_priors.agents.svg0.learner import copy_arrays
from behavior_priors.networks import DistralPolicy
from behavior_priors.networks.gaussian_net import GaussianNet


class TransferError(ValueError):
    """The source run and the new run cannot be combined as asked (says what differs)."""


def _net_signature(net: GaussianNet) -> dict[str, Any]:
    return {
        "inputs": dict(zip(net.keys, net.shapes, strict=True)),
        "latent input": net.extra_size,
        "hidden": tuple(layer.bias.shape[0] for layer in net.torso.layers),
        # A Gaussian head's mean layer, or a categorical head's logits layer.
        "outputs": getattr(net.head, "loc", net.head).bias.shape[0],
    }


def _check_same(name: str, src: GaussianNet, dst: GaussianNet, same_body: bool = True) -> None:
    a, b = _net_signature(src), _net_signature(dst)
    if a == b and _leaf_shapes(src) == _leaf_shapes(dst):
        return
    diffs = []
    if a["inputs"] != b["inputs"]:
        only_src = sorted(set(a["inputs"]) - set(b["inputs"]))
        only_dst = sorted(set(b["inputs"]) - set(a["inputs"]))
        resized = sorted(
            f"{k} {a['inputs'][k]} -> {b['inputs'][k]}"
            for k in set(a["inputs"]) & set(b["inputs"])
            if a["inputs"][k] != b["inputs"][k]
        )
        if only_src:
            diffs.append(f"inputs only in the source: {', '.join(only_src)}")
        if only_dst:
            diffs.append(f"inputs only in the new run: {', '.join(only_dst)}")
        if resized:
            diffs.append(f"inputs of another shape: {'; '.join(resized)}")
    diffs += _size_diffs(a, b, "in the source", "in the new run")
    if not diffs:
        diffs.append("parameter shapes differ")
    hint = (
        ""
        if same_body
        else ". Across bodies the high level must read inputs every body has: train the source "
        "with e.g. --agent.high-keys proprio/velocity task/ --agent.prior-keys proprio/velocity "
        "(docs/transfer.md)"
    )
    raise TransferError(f"cannot transfer {name}: {'; '.join(diffs)}{hint}")


def _size_diffs(a: dict, b: dict, where_a: str, where_b: str) -> list[str]:
    """The sizes (latent input, hidden layers, outputs) in which two signatures differ."""
    return [
        f"{field} {a[field]} {where_a}, {b[field]} {where_b}"
        for field in ("latent input", "hidden", "outputs")
        if a[field] != b[field]
    ]


def _leaf_shapes(module: Any) -> list[tuple[int, ...]]:
    return [x.shape for x in jax.tree.leaves(eqx.filter(module, eqx.is_array))]


def embed_net(src: GaussianNet, dst: GaussianNet) -> GaussianNet:
    """``dst`` made to compute exactly what ``src`` computes: ``src``'s weights, with zero
    first-layer weights on the inputs only ``dst`` reads (e.g. the task inputs a policy sees and
    its prior does not). Both need the same hidden sizes, outputs and latent input, and ``src``'s
    inputs must be among ``dst``'s with the same shapes."""
    a, b = _net_signature(src), _net_signature(dst)
    missing = sorted(set(a["inputs"]) - set(b["inputs"]))
    resized = sorted(
        k for k in a["inputs"] if k in b["inputs"] and a["inputs"][k] != b["inputs"][k]
    )
    problems = []
    if missing:
        problems.append(f"the prior reads {', '.join(missing)}, which the policy does not")
    if resized:
        problems.append(f"inputs of another shape: {', '.join(resized)}")
    problems += _size_diffs(a, b, "(prior)", "(policy)")
    if problems:
        raise TransferError(f"cannot initialise the policy from the prior: {'; '.join(problems)}")
    # Column ranges of each input in the concatenated first-layer input (keys sorted, then z).
    offsets, at = {}, 0
    for k, shape in zip(dst.keys, dst.shapes, strict=True):
        offsets[k] = (at, at + math.prod(shape))
        at += math.prod(shape)
    w_src = src.torso.layers[0].weight
    w = jnp.zeros_like(dst.torso.layers[0].weight)
    col = 0
    for k in src.keys:
        lo, hi = offsets[k]
        w = w.at[:, lo:hi].set(w_src[:, col : col + hi - lo])
        col += hi - lo
    if src.extra_size:
        w = w.at[:, at : at + src.extra_size].set(w_src[:, col : col + src.extra_size])
    out = eqx.tree_at(lambda n: (n.torso, n.head), dst, copy_arrays((src.torso, src.head)))
    return eqx.tree_at(lambda n: n.torso.layers[0].weight, out, w)


def graft(
    fresh: svg0.SVG0Networks,
    source: svg0.SVG0Networks,
    spec: Any,
    same_body: bool,
) -> tuple[svg0.SVG0Networks, dict[str, str]]:
    """The fresh networks of the new run with the source's modules put in, as ``spec`` (a
    resolved :class:`~behavior_priors.transfer.runs.TransferSpec`) asks, and what happened to
    each module (``{"prior.high": "transferred, frozen", ...}``).

    Raises :class:`TransferError` naming what differs when a module does not fit.
    """
    if isinstance(fresh.policy, DistralPolicy) or isinstance(source.policy, DistralPolicy):
        return _graft_distral(fresh, source, spec, same_body)
    nets, what = fresh, {}
    hier = hasattr(fresh.policy, "high")
    if hier != hasattr(source.policy, "high"):
        raise TransferError(
            "the source's policy is "
            + ("hierarchical" if hasattr(source.policy, "high") else "flat")
            + f" and the new run's is {'hierarchical' if hier else 'flat'}"
        )
    if (fresh.prior is None) != (source.prior is None) or (
        fresh.prior is not None and hasattr(fresh.prior, "high") != hasattr(source.prior, "high")
    ):
        raise TransferError("the source's prior is of another kind than the new run's")
    mode = {"frozen": "transferred, frozen", "finetune": "transferred, fine-tuned"}

    # The prior: flat pi0, or pi0^H (+ a separate pi0^L).
    if fresh.prior is not None:
        if not hier:
            if not same_body:
                raise TransferError(
                    "a flat prior acts in the source body's action space; body transfer needs "
                    "a hierarchical prior (pi0^H is kept, the low level relearned)"
                )
            _check_same("the flat prior pi0", source.prior.net, fresh.prior.net)
            nets = eqx.tree_at(lambda n: n.prior, nets, copy_arrays(source.prior))
            what["prior"] = mode[spec.prior]
        else:
            src_high, dst_high = source.prior.high, fresh.prior.high
            if type(src_high) is not type(dst_high):
                raise TransferError(
                    f"high-level prior {type(src_high).__name__} in the source, "
                    f"{type(dst_high).__name__} in the new run"
                )
            if hasattr(src_high, "net"):
                _check_same("the high-level prior pi0^H", src_high.net, dst_high.net, same_body)
            elif _leaf_shapes(src_high) != _leaf_shapes(dst_high):
                raise TransferError("the high-level priors' parameter shapes differ")
            nets = eqx.tree_at(lambda n: n.prior.high, nets, copy_arrays(src_high))
            what["prior.high"] = mode[spec.prior]
            if fresh.prior.low is not None:
                if spec.low_level == "relearn":
                    what["prior.low"] = "fresh (relearned)"
                else:
                    _check_same("the low-level prior pi0^L", source.prior.low, fresh.prior.low)
                    nets = eqx.tree_at(lambda n: n.prior.low, nets, copy_arrays(source.prior.low))
                    what["prior.low"] = mode[spec.prior]

    # The policy's low level pi^L (shared with pi0^L when the prior has no low level).
    if hier:
        if spec.low_level == "relearn":
            what["policy.low"] = "fresh (relearned)"
        else:
            if not same_body:
                raise TransferError(
                    "the low level acts in the source body's action space and reads its "
                    "proprioception; a new body needs --low-level relearn"
                )
            _check_same("the low level pi^L", source.policy.low, fresh.policy.low)
            nets = eqx.tree_at(lambda n: n.policy.low, nets, copy_arrays(source.policy.low))
            what["policy.low"] = mode[spec.low_level]

    # The policy's own part: the flat policy, or pi^H.
    top = "policy.high" if hier else "policy"
    get_top = (lambda n: n.policy.high) if hier else (lambda n: n.policy.net)
    if spec.policy == "fresh":
        what[top] = "fresh"
    elif spec.policy == "prior":
        if fresh.prior is None:
            raise TransferError("--policy prior needs a prior in the source run")
        src_net = source.prior.net if not hier else getattr(source.prior.high, "net", None)
        if src_net is None:
            raise TransferError(
                f"--policy prior needs a learned high-level prior; the source's is "
                f"{type(source.prior.high).__name__}"
            )
        nets = eqx.tree_at(get_top, nets, embed_net(src_net, get_top(fresh)))
        what[top] = "initialised from the source's prior, fine-tuned"
    else:
        _check_same(f"the policy's {top}", get_top(source), get_top(fresh), same_body)
        nets = eqx.tree_at(get_top, nets, copy_arrays(get_top(source)))
        what[top] = "transferred, " + ("frozen" if spec.policy == "source-frozen" else "fine-tuned")
    what["critic"] = "fresh"
    return nets, what


def _graft_distral(
    fresh: svg0.SVG0Networks, source: svg0.SVG0Networks, spec: Any, same_body: bool
) -> tuple[svg0.SVG0Networks, dict[str, str]]:
    """Distral: the distilled pi0 (``policy.distilled``) is the prior; the task columns are the
    policy's own part (``fresh``, or the source's with ``source``/``source-frozen``)."""
    if not (isinstance(fresh.policy, DistralPolicy) and isinstance(source.policy, DistralPolicy)):
        raise TransferError("only a Distral run transfers into a Distral run")
    if not same_body:
        raise TransferError("Distral's pi0 acts in the source's action space: same body only")
    _check_same("Distral's distilled policy pi0", source.policy.distilled, fresh.policy.distilled)
    nets = eqx.tree_at(lambda n: n.policy.distilled, fresh, copy_arrays(source.policy.distilled))
    what = {
        "policy.distilled": {
            "frozen": "transferred, frozen",
            "finetune": "transferred, fine-tuned",
        }[spec.prior]
    }
    if spec.policy == "prior":
        raise TransferError(
            "--policy prior does not apply to Distral: a fresh 2-col policy already starts "
            "from pi0 (its task columns start near zero)"
        )
    if spec.policy == "fresh":
        what["policy.columns"] = "fresh"
    else:
        if _leaf_shapes(source.policy.columns) != _leaf_shapes(fresh.policy.columns):
            raise TransferError("the Distral task columns' parameter shapes differ")
        nets = eqx.tree_at(lambda n: n.policy.columns, nets, copy_arrays(source.policy.columns))
        frozen = spec.policy == "source-frozen"
        what["policy.columns"] = "transferred, " + ("frozen" if frozen else "fine-tuned")
    what["critic"] = "fresh"
    return nets, what


# Agent fields that must agree for modules to carry their meaning across runs.
_ARCHITECTURE = ("policy", "prior", "low_level", "high_prior", "latent_dim", "distral_columns")


def check_agents(src: svg0.SVG0Config, dst: svg0.SVG0Config) -> None:
    diffs = [
        f"{k}: {getattr(src, k)!r} in the source, {getattr(dst, k)!r} in the new run"
        for k in _ARCHITECTURE
        if getattr(src, k) != getattr(dst, k)
    ]
    if diffs:
        raise TransferError("the agents' architectures differ: " + "; ".join(diffs))
