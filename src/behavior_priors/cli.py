"""The ``behavior-priors`` command: train, transfer, eval, video, plot, list, demo, reproduce,
sweep.

``train`` takes a preset and dotted overrides of :class:`~behavior_priors.training.config.
TrainConfig` parsed by ``tyro`` (``--agent.kl-cost 0.1``, ``--num-envs 16``); environment options
go through ``--env-kwargs KEY=VALUE ...``. Every sub-command has ``--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from behavior_priors import __version__


class UsageError(Exception):
    """A user mistake: printed as one line, exit status 2."""


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``, with a one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _camera(text: str) -> str | int:
    """``--camera``: a camera id when the text is a number, else a name (checked by the env)."""
    return int(text) if text.isdigit() else text


# -- train ------------------------------------------------------------------------------------


_TRUST_HELP = (
    "consent to an environment that the run folder names as module:callable: its code is "
    "imported and called (never without this; only for folders you trust)"
)


_COMMON_OVERRIDES = """\
common config overrides (the preset's value unless given; all of them: --help-config):
  --env NAME            environment: a registered name (behavior-priors list envs),
                        gymnasium:<id> or dm_control:<domain>-<task> (docs/envs.md)
  --seed INT            seed of the environments, replay, networks and actor (default 0)
  --total-env-steps N   training budget in env steps, summed over copies; with --resume,
                        a higher budget extends the run
  --num-envs INT        environment copies stepped together
  --eval-every N        env steps between evaluations (0: only at the end)
  --agent.policy hierarchical|flat|distral, --agent.prior hierarchical|flat|none|distilled,
  --agent.kl-cost FLOAT the agent's variant and its regulariser (docs/agent.md)

examples:
  behavior-priors train --preset gtt-pointmass-hier --seed 3 --total-env-steps 100000
  behavior-priors train --env gymnasium:Pendulum-v1 --total-env-steps 20000  # preset outside
  behavior-priors train --resume runs/demo-seed0 --total-env-steps 600000
"""


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="behavior-priors train",
        add_help=False,
        # No abbreviations: `--env` is a TrainConfig field and must not become `--env-kwargs`.
        allow_abbrev=False,
        description="Train an agent. Options below, then any TrainConfig override "
        "(list them with `behavior-priors train --help-config`).",
        epilog=_COMMON_OVERRIDES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset",
        help="named preset (behavior-priors list presets); default: demo, or outside for an "
        "environment outside the native suite (gymnasium:, dm_control:, ...)",
    )
    p.add_argument("--run-dir", type=Path, help="run directory (default runs/<preset>-seed<N>)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue this run")
    p.add_argument("--checkpoint-step", type=int, help="with --resume: that checkpoint")
    p.add_argument(
        "--env-kwargs", nargs="+", default=[], metavar="KEY=VALUE", help="environment options"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--trust-env-code", action="store_true", help=_TRUST_HELP)
    p.add_argument("-h", "--help", action="store_true")
    p.add_argument("--help-config", action="store_true", help="list the config overrides")
    d = p.add_argument_group("distributed (Ray; needs the dist extra, docs/distributed.md)")
    d.add_argument("--distributed", action="store_true", help="Ray actors and one learner")
    from behavior_priors.training.distributed.config import DistConfig

    _add_dataclass_options(d, DistConfig)
    return p


def _attribute_docs(cls: type) -> dict[str, str]:
    """``{field: text}`` from the ``Attributes:`` section of a dataclass's docstring."""
    docs: dict[str, str] = {}
    name = None
    in_section = False
    for raw in (cls.__doc__ or "").splitlines():
        line = raw.strip()
        if line == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        if not line:
            break
        head, sep, text = line.partition(": ")
        indent = len(raw) - len(raw.lstrip())
        if sep and head.isidentifier() and indent <= 6:  # a field, not a continuation line
            name = head
            docs[name] = text
        elif name is not None:
            docs[name] += " " + line
    return docs


def _add_dataclass_options(group: Any, cls: type) -> None:
    """One ``--field-name`` option per field of the dataclass ``cls`` (int, float, str, or
    optional ones), with its docstring as help and its default shown; unset options stay
    ``None`` so that only the given ones override the dataclass's defaults."""
    docs = _attribute_docs(cls)
    types = {"int": int, "float": float, "str": str}
    for f in dataclasses.fields(cls):
        base = str(f.type).replace(" | None", "").strip()
        if base not in types:
            raise TypeError(f"{cls.__name__}.{f.name}: no command-line type for {f.type!r}")
        group.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f"{cls.__name__}.{f.name}",
            type=types[base],
            default=None,
            metavar=base.upper(),
            help=f"{docs.get(f.name, '')} (default {f.default})".replace("%", "%%"),
        )


def _dataclass_from_options(cls: type, opts: argparse.Namespace) -> Any:
    given = {
        f.name: getattr(opts, f"{cls.__name__}.{f.name}")
        for f in dataclasses.fields(cls)
        if getattr(opts, f"{cls.__name__}.{f.name}") is not None
    }
    try:
        return cls(**given)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _dist_given(opts: argparse.Namespace) -> bool:
    from behavior_priors.training.distributed.config import DistConfig

    return any(
        getattr(opts, f"DistConfig.{f.name}") is not None for f in dataclasses.fields(DistConfig)
    )


def _dist_config(opts: argparse.Namespace) -> Any:
    from behavior_priors.training.distributed.config import DistConfig

    return _dataclass_from_options(DistConfig, opts)


def _parse_env_kwargs(items: list[str]) -> dict[str, Any]:
    from behavior_priors.training.config import parse_key_values

    try:
        return parse_key_values(items)
    except ValueError as e:
        raise UsageError(f"--env-kwargs {e}") from None


def _parse_overrides(base: Any, args: list[str], prog: str) -> Any:
    """``tyro.cli`` over the config ``base``, with a rejected value (one the config refuses,
    one that is not of the option's type, or not one of its choices) as a one-line
    :class:`UsageError` instead of the box tyro draws. Unknown options keep tyro's message,
    which lists the closest ones with their help."""
    import tyro

    try:  # tyro's hook is private (tyro >= 1.0); an older tyro keeps its box
        from tyro import _errors as tyro_errors

        on_parse_error = tyro_errors.on_parse_error
        value_error = tyro_errors.InstantiationFailure
        choice_error = tyro_errors.InvalidChoice
    except (ImportError, AttributeError):
        return tyro.cli(type(base), default=base, args=args, prog=prog)

    def one_line(event: Any) -> None:
        flags = ()
        if getattr(event, "argument", None) is not None:
            flags = tuple(event.argument.lowered.name_or_flags)
        flag = "/".join(flags)
        if isinstance(event, choice_error) and flag:
            import difflib

            close = difflib.get_close_matches(event.value, event.choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            choices = ", ".join(map(repr, event.choices))
            raise UsageError(f"{flag} must be one of {choices}, got {event.value!r}{hint}")
        if isinstance(event, value_error):
            given = next((v for f in flags if (v := _option_values(args, f)) is not None), None)
            if given is not None:
                metavar = event.argument.lowered.metavar
                raise UsageError(f"{flag} expects {metavar}, got {' '.join(given)!r}")
            # The config's own check: its message names the field, the value and the range.
            raise UsageError(" ".join(event.message.split()))

    with on_parse_error(one_line):
        return tyro.cli(type(base), default=base, args=args, prog=prog)


def _option_values(args: list[str], flag: str) -> list[str] | None:
    """The values given to ``--flag`` in ``args`` (``--flag V ...`` or ``--flag=V``); the last
    time it is given, as that is the one parsed."""
    for i in reversed(range(len(args))):
        arg = args[i]
        if arg == flag:
            values = []
            for value in args[i + 1 :]:
                if value.startswith("--"):
                    break
                values.append(value)
            return values
        if arg.startswith(flag + "="):
            return [arg.partition("=")[2]]
    return None


def build_train_config(argv: list[str]) -> tuple[Any, argparse.Namespace]:
    """``(TrainConfig, wrapper options)`` from ``behavior-priors train`` arguments."""
    from behavior_priors.training.presets import default_preset, get_preset

    opts, rest = _train_parser().parse_known_args(argv)
    if opts.help:
        _train_parser().print_help()
        print("\nConfig overrides: behavior-priors train --help-config")
        raise SystemExit(0)
    if opts.preset is None:
        env = _option_values(rest, "--env")
        opts.preset = default_preset(env[0] if env else None)
    try:
        base = get_preset(opts.preset)
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    env_kwargs = _parse_env_kwargs(opts.env_kwargs)
    if env_kwargs:
        base = base.replace(env_kwargs={**base.env_kwargs, **env_kwargs})
    if opts.help_config:
        rest = ["--help"]
    config = _parse_overrides(base, rest, "behavior-priors train")
    return _own_env_kwargs(base, config, env_kwargs), opts


def _own_env_kwargs(base: Any, config: Any, env_kwargs: dict[str, Any]) -> Any:
    """``config`` whose ``env_kwargs`` are only the user's when ``--env`` chose another
    environment than the preset's: the preset's options belong to its own environment."""
    if config.env == base.env:
        return config
    dropped = sorted(set(base.env_kwargs) - set(env_kwargs))
    if dropped:
        print(
            f"note: --env {config.env}: not passing the preset's environment options "
            f"({', '.join(dropped)}); give its own with --env-kwargs KEY=VALUE",
            file=sys.stderr,
        )
    return config.replace(env_kwargs=dict(env_kwargs))


def _run_name(preset: str, config: Any) -> str:
    """The default run folder's name: the preset's, or for the outside preset the
    environment's (``gymnasium:Pendulum-v1`` -> ``Pendulum-v1``), so that runs on two outside
    environments do not meet in one folder."""
    from behavior_priors.training.presets import OUTSIDE

    if preset != OUTSIDE:
        return preset
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", config.env.rpartition(":")[2]).strip("-.")
    return name or OUTSIDE


def _cmd_train(argv: list[str]) -> int:
    from behavior_priors.training.run import Interrupted, train

    config, opts = build_train_config(argv)
    extend_to = None
    if opts.resume:
        extend_to = _extension(argv)
        if argv_has_overrides(_without_extension(argv)):
            raise UsageError(
                "--resume continues a run with its own config; drop the overrides (only "
                "--total-env-steps N may go with it, to extend the run)"
            )
        run_dir = opts.resume
        config = None
    else:
        run_dir = (
            opts.run_dir or Path("runs") / f"{_run_name(opts.preset, config)}-seed{config.seed}"
        )
    distributed = opts.distributed
    if opts.resume:
        from behavior_priors.training.run import read_run

        try:
            distributed = "distributed" in read_run(opts.resume)
        except FileNotFoundError as e:
            raise UsageError(str(e)) from None
    progress = not opts.no_progress and sys.stderr.isatty()
    on_log = None if progress else _print_line
    try:
        if distributed and extend_to is not None:
            raise UsageError(
                "--total-env-steps with --resume extends single-process runs; this run is "
                "distributed and cannot be extended yet"
            )
        if distributed:
            from behavior_priors.training.distributed import train_distributed

            result = train_distributed(
                config,
                run_dir,
                None if opts.resume else _dist_config(opts),
                resume=bool(opts.resume),
                checkpoint_step=opts.checkpoint_step,
                progress=progress,
                on_log=on_log,
                trust_code=opts.trust_env_code,
            )
        else:
            result = train(
                config,
                run_dir,
                resume=bool(opts.resume),
                checkpoint_step=opts.checkpoint_step,
                progress=progress,
                on_log=on_log,
                trust_code=opts.trust_env_code,
                total_env_steps=extend_to,
            )
    except Interrupted as e:
        print(e, file=sys.stderr)
        return 128 + e.signum
    if result.already_finished:
        print(
            f"{result.run_dir} had already finished at {result.env_steps:,d} env steps: "
            "nothing to train, nothing written. To train it longer, pass --total-env-steps N "
            "with --resume"
        )
    _print_final(result.run_dir, result.env_steps, result.final_eval)
    return 0


_EXTEND = "--total-env-steps"


def _extension(argv: list[str]) -> int | None:
    """The budget ``--total-env-steps N`` gives with ``--resume`` (extending the run)."""
    value = None
    for i, arg in enumerate(argv):
        if arg == _EXTEND:
            value = argv[i + 1] if i + 1 < len(argv) else ""
        elif arg.startswith(_EXTEND + "="):
            value = arg.split("=", 1)[1]
    if value is None:
        return None
    try:
        steps = int(value.replace("_", ""))
    except ValueError:
        raise UsageError(f"{_EXTEND} needs a whole number of env steps, got {value!r}") from None
    if steps < 1:
        raise UsageError(f"{_EXTEND} must be >= 1, got {steps}")
    return steps


def _without_extension(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == _EXTEND:
            skip = True
        elif not arg.startswith(_EXTEND + "="):
            out.append(arg)
    return out


def argv_has_overrides(argv: list[str]) -> bool:
    opts, rest = _train_parser().parse_known_args(argv)
    return bool(rest or opts.env_kwargs or opts.run_dir or _dist_given(opts))


def _print_line(line: dict[str, float]) -> None:
    keys = (
        "perf/env_steps_per_s",
        "charts/episode_return",
        "charts/success_rate",
        "eval/episode_return",
        "eval/success_rate",
        "kl/total",
        "losses/critic",
    )
    parts = [f"{int(line['env_steps']):>9,d} steps"]
    parts += [
        f"{k.split('/', 1)[1] if k.startswith('charts') else k}={line[k]:.3g}"
        for k in keys
        if k in line
    ]
    print("  ".join(parts), flush=True)


def _print_final(run_dir: Path | None, env_steps: int, final: dict[str, float]) -> None:
    print(f"done: {env_steps:,d} env steps; run directory {run_dir}")
    if final:
        print(
            "final evaluation: "
            + ", ".join(f"{k.removeprefix('eval/')}={v:.3g}" for k, v in final.items())
        )


# -- transfer -----------------------------------------------------------------------------------


def _transfer_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="behavior-priors transfer",
        add_help=False,
        # No abbreviations: `--env` is a TrainConfig field and must not become `--env-kwargs`.
        allow_abbrev=False,
        description="Start a run from the prior (and low level) of a trained run: a new task "
        "(--task) or a new body (--body). The agent's architecture and loop settings are the "
        "source's; any TrainConfig override follows (e.g. --total-env-steps 100000 "
        "--agent.kl-cost 0.1).",
    )
    p.add_argument("--from", dest="source", type=Path, required=True, metavar="RUN_DIR")
    p.add_argument("--checkpoint-step", type=int, help="the source's checkpoint (default latest)")
    p.add_argument("--task", help="task set of the new run (gtt3, movebox, ... or a preset task)")
    p.add_argument("--body", help="body of the new run (default: the source's)")
    p.add_argument("--prior", choices=("frozen", "finetune"), default="frozen")
    p.add_argument(
        "--low-level",
        choices=("frozen", "finetune", "relearn"),
        help="the shared low level pi^L (default: frozen; relearn for a new body)",
    )
    p.add_argument(
        "--policy",
        choices=("fresh", "prior", "source", "source-frozen"),
        help="the new policy (pi^H or the flat policy): fresh, initialised from the prior, or the "
        "source's (default: fresh; source for a new body)",
    )
    p.add_argument("--run-dir", type=Path, help="default runs/transfer-<env>-seed<N>")
    p.add_argument("--env-kwargs", nargs="+", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--trust-env-code", action="store_true", help=_TRUST_HELP)
    p.add_argument("-h", "--help", action="store_true")
    return p


def _cmd_transfer(argv: list[str]) -> int:
    from behavior_priors.training.run import Interrupted
    from behavior_priors.transfer import TransferError, TransferSpec, transfer, transfer_config

    if "-h" in argv or "--help" in argv:
        _transfer_parser().print_help()
        return 0
    opts, rest = _transfer_parser().parse_known_args(argv)
    try:
        spec = TransferSpec(
            source=str(opts.source),
            checkpoint_step=opts.checkpoint_step,
            prior=opts.prior,
            low_level=opts.low_level,
            policy=opts.policy,
        )
        env_kwargs = _parse_env_kwargs(opts.env_kwargs)
        base = transfer_config(
            spec,
            task=opts.task,
            body=opts.body,
            env_kwargs=env_kwargs,
            trust_code=opts.trust_env_code,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    config = _parse_overrides(base, rest, "behavior-priors transfer")
    config = _own_env_kwargs(base, config, env_kwargs)
    run_dir = opts.run_dir or Path("runs") / f"transfer-{config.env}-seed{config.seed}"
    try:
        result = transfer(
            config,
            spec,
            run_dir,
            progress=not opts.no_progress and sys.stderr.isatty(),
            on_log=None if sys.stderr.isatty() and not opts.no_progress else _print_line,
        )
    except TransferError as e:
        raise UsageError(str(e)) from None
    except Interrupted as e:
        print(e, file=sys.stderr)
        return 128 + e.signum
    _print_final(result.run_dir, result.env_steps, result.final_eval)
    return 0


# -- eval, video, plot, list --------------------------------------------------------------------


def _load_env(run, num_envs: int, seed: int, trust_code: bool):
    from behavior_priors.training.run import make_run_env

    return make_run_env(run, num_envs, seed, trust_code=trust_code)


def _cmd_eval(args: argparse.Namespace) -> int:
    from behavior_priors.training.evaluation import run_episodes
    from behavior_priors.training.files import atomic_write_text
    from behavior_priors.training.run import load

    run = load(args.run_dir, args.checkpoint_step)
    env = _load_env(run, min(args.episodes, 8), args.seed, args.trust_env_code)
    stats = run_episodes(
        run.state.networks.policy,
        env,
        run.config.agent,
        args.episodes,
        seed=args.seed,
        evaluation=not args.stochastic,
        prior_of=run.state.networks if args.prior else None,
    )
    summary = {
        "env_steps": run.env_steps,
        "actor": "prior" if args.prior else "policy",
        "seed": args.seed,
        "stochastic": args.stochastic,
    }
    summary.update(stats.summary())
    # Named by everything that makes one evaluation differ from another, so that a rerun with
    # other settings adds a file instead of replacing one (the same settings give the same
    # numbers: the evaluation is seeded).
    name = f"eval-{summary['actor']}-{run.env_steps}-{args.episodes}ep-seed{args.seed}"
    out = args.out or Path(args.run_dir) / f"{name}{'-stochastic' if args.stochastic else ''}.json"
    atomic_write_text(out, json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"written to {out}")
    return 0


def _cmd_video(args: argparse.Namespace) -> int:
    from behavior_priors.training.run import load
    from behavior_priors.training.video import record, write_video

    run = load(args.run_dir, args.checkpoint_step)
    env = _load_env(run, 1, args.seed, args.trust_env_code)
    steps = args.steps or getattr(env, "episode_steps", 200)
    try:
        frames, used, stats = record(
            run,
            env,
            steps,
            seed=args.seed,
            use_prior=args.prior,
            renderer=args.renderer,
            camera=args.camera,
        )
    except ValueError as e:  # e.g. the grid world: no rendering, no arena snapshot
        raise UsageError(f"{run.config.env}: no video: {e}") from None
    who = "prior" if args.prior else "policy"
    out = args.out or Path(args.run_dir) / "videos" / f"{who}-{run.env_steps}.{args.format}"
    write_video(frames, out)
    print(f"{who} video ({used} frames, {len(frames)} frames, return {stats['return']:.1f}): {out}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from behavior_priors.training.logger import read_metrics
    from behavior_priors.training.plotting import default_metrics, per_task_metrics, plot_runs

    dirs = [Path(d) for d in args.run_dirs]
    lines = []
    for d in dirs:
        if not (d / "metrics.jsonl").exists():
            raise UsageError(f"{d} is not a run directory (no metrics.jsonl)")
        lines += read_metrics(d)
    available = {k for line in lines for k in line if k != "env_steps"}
    metrics = args.metric or default_metrics(lines)
    missing = [m for m in metrics if m not in available]
    if args.metric and missing:
        import difflib

        close = difflib.get_close_matches(missing[0], sorted(available), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"no run has metric {missing[0]!r}{hint}")
    if args.per_task and not any(per_task_metrics(lines, m) for m in metrics):
        raise UsageError(
            f"no run logged {' or '.join(metrics)} per task (a single-task environment, or a "
            "run from before per-task metrics were logged)"
        )
    out = args.out or (dirs[0] / "curves.png" if len(dirs) == 1 else dirs[0].parent / "curves.png")
    plot_runs(dirs, out, metrics=metrics, per_task=args.per_task)
    print(f"learning curves: {out}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from behavior_priors.envs.mujoco import bodies, tasks
    from behavior_priors.envs.registry import list_envs
    from behavior_priors.training.presets import preset_names

    what = args.what
    if what in ("all", "presets"):
        print("presets:\n  " + "\n  ".join(preset_names()))
    if what in ("all", "experiments"):
        from behavior_priors.experiments import EXPERIMENTS

        print("experiments (behavior-priors reproduce NAME):")
        for e in EXPERIMENTS.values():
            print(f"  {e.name:18s} {e.description}")
    if what in ("all", "envs"):
        print("environments:")
        for e in list_envs():
            print(f"  {e.name:32s} {e.description}")
        print(
            "  and any gymnasium:<id>, dm_control:<domain>-<task> or <module>:<callable> "
            "(docs/envs.md)"
        )
    if what in ("all", "bodies"):
        print("bodies:\n  " + "\n  ".join(bodies.BODIES))
    if what in ("all", "tasks"):
        print("task kinds:\n  " + "\n  ".join(k.name.lower() for k in tasks.Kind))
    return 0


def _add_training_options(p: argparse.ArgumentParser, what: str, group: str) -> None:
    """How ``reproduce`` and ``sweep`` train their runs: worker processes, batched seeds (the
    new seeds of each ``group``) and the Ray options (docs/distributed.md)."""
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=2,
        help="runs trained at once, in separate processes",
    )
    p.add_argument(
        "--vmap-seeds",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"train the new seeds of each {group} batched (one environment, replay, "
        "actor call and update for all of them), split among the workers (default; "
        "docs/benchmarks.md, 'Many seeds')",
    )
    _add_cluster_options(p, what)


def _add_cluster_options(p: argparse.ArgumentParser, what: str) -> None:
    """``reproduce``'s and ``sweep``'s Ray options (docs/distributed.md)."""
    c = p.add_argument_group("on a Ray cluster (docs/distributed.md, 'Experiments on a cluster')")
    c.add_argument(
        "--ray-address",
        metavar="ADDR",
        help=f"train the runs as Ray tasks on this cluster (auto, HOST:PORT); the {what} "
        "directory must be on a filesystem every node shares",
    )
    c.add_argument(
        "--storage",
        type=Path,
        metavar="DIR",
        help=f"shared directory for the {what} (default --out: DIR/NAME)",
    )
    c.add_argument(
        "--cpus-per-task", type=float, metavar="N", help="CPUs per run or group of seeds (1)"
    )
    c.add_argument(
        "--gpus-per-task",
        type=float,
        metavar="N",
        help="GPUs per run or group of seeds (0; the learner's JAX needs a CUDA wheel there)",
    )


def _cluster_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.ray_address is None and (args.storage or args.cpus_per_task or args.gpus_per_task):
        raise UsageError("--storage, --cpus-per-task and --gpus-per-task go with --ray-address")
    for name in ("cpus_per_task", "gpus_per_task"):
        value = getattr(args, name)
        if value is not None and not value >= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
    return dict(
        ray_address=args.ray_address,
        cpus_per_unit=1.0 if args.cpus_per_task is None else args.cpus_per_task,
        gpus_per_unit=args.gpus_per_task or 0.0,
    )


# -- sweep ---------------------------------------------------------------------------------------


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _cmd_sweep(args: argparse.Namespace) -> int:
    from behavior_priors.experiments.stats import require_rliable
    from behavior_priors.experiments.sweep import Sweep, run_sweep, setting_name, summarise_sweep
    from behavior_priors.training.config import parse_key_values
    from behavior_priors.training.presets import get_preset

    try:
        get_preset(args.preset)
        grid = {}
        for key, *values in args.grid:
            if not values:
                raise UsageError(f"--grid {key}: give its values, e.g. --grid {key} V1 V2")
            grid[setting_name(key)] = tuple(_literal(v) for v in values)
        fixed = {setting_name(k): v for k, v in parse_key_values(args.set).items()}
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    cluster = _cluster_kwargs(args)
    sweep = Sweep(args.preset, grid, args.seeds, fixed, args.metric)
    require_rliable()  # before the training, not after it
    out = args.out or (args.storage or Path("sweeps")) / args.preset
    if args.workers == 1 and args.vmap_seeds and args.ray_address is None:
        from behavior_priors.training.devices import use_host_devices

        use_host_devices()
    outcomes = run_sweep(sweep, out, workers=args.workers, vmap_seeds=args.vmap_seeds, **cluster)
    summary = summarise_sweep(sweep, out)
    print(f"summary: {summary.path}")
    failed = {k: v for k, v in outcomes.items() if v.startswith(("error", "interrupted"))}
    for name, outcome in failed.items():
        print(f"  {name}: {outcome}", file=sys.stderr)
    if summary.missing:
        print(
            f"{len(summary.missing)} runs not finished; run the same command again to continue",
            file=sys.stderr,
        )
        return 1
    return 0


# -- reproduce ----------------------------------------------------------------------------------


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from behavior_priors.experiments import get_experiment, reproduce

    try:
        get_experiment(args.name)
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    if args.seeds is not None and args.seeds < 1:
        raise UsageError("--seeds must be >= 1")
    if args.budget_scale <= 0:
        raise UsageError("--budget-scale must be > 0")
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    out = args.out or (args.storage or Path("results")) / args.name
    cluster = _cluster_kwargs(args)
    if args.workers == 1 and args.vmap_seeds and args.ray_address is None:
        # Batched seeds in this process: split them over one XLA device per core.
        from behavior_priors.training.devices import use_host_devices

        use_host_devices()
    try:
        report = reproduce(
            args.name,
            out,
            args.seeds,
            args.budget_scale,
            args.workers,
            vmap_seeds=args.vmap_seeds,
            publish=None if args.publish is None else str(args.publish),
            **cluster,
        )
    except (ValueError, ImportError) as e:  # e.g. --out holds another experiment
        raise UsageError(str(e)) from None
    print(f"report: {report.path}\ncurves: {report.figure}")
    if report.verdict is not None:
        print(f"verdict: {report.verdict}")
    if report.page is not None:
        print(f"page: {report.page}")
    failed = {k: v for k, v in report.outcomes.items() if v.startswith(("error", "interrupted"))}
    if failed:
        for name, outcome in failed.items():
            print(f"  {name}: {outcome}", file=sys.stderr)
        print(
            f"{len(report.missing)} runs not finished; run the same command again to continue",
            file=sys.stderr,
        )
        return 1
    return 0


# -- demo ---------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from behavior_priors.training.demo import run_demo
    from behavior_priors.training.presets import get_preset

    if args.final_episodes < 1:
        raise UsageError(f"--final-episodes must be >= 1, got {args.final_episodes}")
    run_dir = args.run_dir or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    steps = args.steps or get_preset("demo").total_env_steps
    print(
        f"behavior-priors demo: hierarchical prior with a shared low level, point mass, go to one "
        f"of 3 targets; {steps:,d} env steps into {run_dir}",
        flush=True,
    )
    tty = sys.stderr.isatty()
    s = run_demo(
        run_dir,
        steps=args.steps,
        final_episodes=args.final_episodes,
        progress=tty,
        on_log=None if tty else _print_line,
    )
    low, high = s["final_success_rate_95ci"]
    print(f"\ntrained {s['env_steps']:,d} env steps in {s['minutes']:.1f} min")
    print(
        f"final success rate {s['final_success_rate']:.0%} (95% interval {low:.0%}-"
        f"{high:.0%}, {s['final_episodes']} episodes; return {s['final_return']:.1f}); uniformly "
        f"random actions: {s['random_success_rate']:.0%} (return {s['random_return']:.1f})"
    )
    print(f"learning curves: {s['curves']}")
    print(f"policy video ({s['renderer']}): {s['policy_video']}")
    print(f"prior acting alone: {s['prior_video']}")
    print(f"metrics: {run_dir / 'metrics.jsonl'}  (TensorBoard: {run_dir / 'tensorboard'})")
    return 0


# -- wiring ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="behavior-priors",
        allow_abbrev=False,
        description="KL-regularised RL with learned, hierarchical behaviour priors.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("train", help="train an agent (presets, overrides, resume)", add_help=False)
    sub.add_parser(
        "transfer", help="start a run from a trained run's prior (new task or body)", add_help=False
    )

    def run_dir_cmd(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help, description=help, formatter_class=argparse.RawTextHelpFormatter
        )
        p.add_argument("run_dir", type=Path, help="a run directory (runs/<preset>-seed<N>)")
        p.add_argument(
            "--checkpoint-step", type=_non_negative_int, help="default: the latest checkpoint"
        )
        p.add_argument(
            "--seed",
            type=_non_negative_int,
            default=0,
            help="seed of the environment's episodes (default 0)",
        )
        p.add_argument("--prior", action="store_true", help="act with the prior alone")
        p.add_argument("--trust-env-code", action="store_true", help=_TRUST_HELP)
        return p

    p = run_dir_cmd("eval", "evaluate a trained run")
    p.add_argument(
        "--episodes", type=_positive_int, default=20, help="complete episodes (default 20)"
    )
    p.add_argument("--stochastic", action="store_true", help="sample instead of the means")
    p.add_argument(
        "--out",
        type=Path,
        help="JSON path (default: the run dir's eval-<actor>-<step>-<N>ep-seed<S>.json)",
    )
    p.set_defaults(func=_cmd_eval)
    p = run_dir_cmd("video", "video of the policy (or --prior) of a run")
    p.add_argument("--out", type=Path, help="output .gif or .mp4 (default in the run dir)")
    p.add_argument("--steps", type=_positive_int, help="control steps (default one episode)")
    p.add_argument("--format", choices=("gif", "mp4"), default="gif")
    p.add_argument("--renderer", choices=("auto", "mujoco", "schematic"), default="auto")
    p.add_argument(
        "--camera",
        type=_camera,
        help="MuJoCo view of a native-suite run: top (default: from above, fitted to the\n"
        "arena), track (behind the body, following it), or another camera of the model\n"
        "by name or id; not with the schematic, which is always top-down",
    )
    p.set_defaults(func=_cmd_video)
    p = sub.add_parser("plot", help="learning curves of runs (mean and 95%% CI across seeds)")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", type=Path, help="PNG path")
    p.add_argument("--metric", action="append", help="metric to plot (repeatable)")
    p.add_argument(
        "--per-task",
        action="store_true",
        help="one curve per task (multi-task runs): return, and success where the task has it",
    )
    p.set_defaults(func=_cmd_plot)
    p = sub.add_parser("list", help="presets, environments, bodies, tasks")
    p.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=("all", "presets", "experiments", "envs", "bodies", "tasks"),
    )
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("demo", help="train the default agent on the default task, show results")
    p.add_argument("--run-dir", type=Path)
    p.add_argument("--steps", type=_positive_int, help="env steps (default: the demo preset's)")
    p.add_argument(
        "--final-episodes",
        type=int,
        default=100,
        help="deterministic episodes of the final evaluation (and of random actions)",
    )
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser(
        "reproduce",
        help="run a named experiment (skipping finished runs) and build its report",
        description="Run every method x task x seed of a named experiment that is not finished "
        "yet (interrupted runs resume from their checkpoints), then write report.md, "
        "curves.png and summary.json into --out.",
    )
    p.add_argument("name", help="experiment name (behavior-priors list experiments)")
    p.add_argument("--seeds", type=int, help="number of seeds (default: the experiment's)")
    p.add_argument("--budget-scale", type=float, default=1.0, help="multiply the step budget")
    p.add_argument("--out", type=Path, help="experiment directory (default results/NAME)")
    _add_training_options(p, "experiment", "method and task")
    p.add_argument(
        "--publish",
        type=Path,
        metavar="DIR",
        help="also write the result page NAME.md, its figure and the claims table README.md "
        "into DIR (docs/results for the committed evidence)",
    )
    p.set_defaults(func=_cmd_reproduce)
    p = sub.add_parser(
        "sweep",
        help="train a preset at every point of a grid of settings x seeds, and summarise",
        description="Train PRESET at every combination of the --grid values for seeds "
        "0..N-1 (finished runs are skipped, interrupted ones resumed: the same command "
        "continues a sweep), then write sweep.md and sweep-summary.json into --out "
        "(docs/experiments.md, 'Sweeps').",
    )
    p.add_argument("--preset", required=True, help="the preset every run starts from")
    p.add_argument(
        "--grid",
        nargs="+",
        action="append",
        required=True,
        metavar="KEY V",
        help="a setting and its values, e.g. --grid agent.kl-cost 0.01 0.1 (repeat for more "
        "settings: every combination is trained)",
    )
    p.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="settings of every run"
    )
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds per point (default 3)")
    p.add_argument(
        "--metric",
        default="eval/episode_return",
        help="the evaluation metric summarised (default eval/episode_return)",
    )
    p.add_argument("--out", type=Path, help="sweep directory (default sweeps/PRESET)")
    _add_training_options(p, "sweep", "point")
    p.set_defaults(func=_cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Headless rendering: MuJoCo reads MUJOCO_GL at import; EGL needs no display.
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        if argv and argv[0] == "train":
            return _cmd_train(argv[1:])
        if argv and argv[0] == "transfer":
            return _cmd_transfer(argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return args.func(args)
    except UsageError as e:
        print(f"behavior-priors: error: {e}", file=sys.stderr)
        return 2
    except KeyError as e:  # str() of a KeyError quotes its message
        print(f"behavior-priors: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError, ImportError) as e:
        # Bad input (a wrong option value, a broken run directory, a full disk, a missing
        # optional extra): one line, not a traceback. BEHAVIOR_PRIORS_TRACEBACK=1 shows it.
        if os.environ.get("BEHAVIOR_PRIORS_TRACEBACK"):
            raise
        print(f"behavior-priors: error: {e}", file=sys.stderr)
        return 2
    except (FloatingPointError, RuntimeError) as e:
        from behavior_priors.training.checkpoint import CheckpointError

        if os.environ.get("BEHAVIOR_PRIORS_TRACEBACK") or not isinstance(
            e, CheckpointError | FloatingPointError
        ):
            raise
        print(f"behavior-priors: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
