"""Command line: ``python -m jaxmeta train|eval|video|plot|envs|algos|bench``.

Every field of the algorithm's config is a flag named after its flat name
(:mod:`jaxmeta.config`): ``--inner-lr 0.1``, ``--hidden-sizes 64,64``, ``--ppo-clip 0.15``,
``--remat true``. Env constructor arguments are ``--env-arg horizon=50``. ``--sweep
inner_lr=0.05,0.2`` trains every value × seed in one compiled program.

Exit codes: 0 done; 2 refused input (one line on stderr, ``error: ...``, naming the flag or
field, before anything compiles); 1 training stopped on a non-finite value; 128 + the
signal's number (130 Ctrl-C, 143 SIGTERM) when a signal stopped training after saving.
"""

from __future__ import annotations

import argparse
import json
import sys

from jaxmeta import algorithms, envs
from jaxmeta import config as config_lib


class UsageError(ValueError):
    """A command line argparse refuses (reported in one line, exit code 2)."""


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors raise :class:`UsageError` instead of printing the whole
    usage and exiting, so every refusal is one ``error:`` line."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def _parse_scalar(s: str):
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def _converter(cls: type, name: str):
    def convert(text: str):
        try:
            return config_lib.parse_value(cls, name, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def add_config_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--flat-name`` flag per leaf field of config class ``cls`` (and the older names
    in ``cls.LEGACY``, marked deprecated)."""
    group = parser.add_argument_group(f"{cls.__name__} (algorithm config; traced fields can "
                                      "be swept)")
    for name, leaf in config_lib.flat_fields(cls).items():
        path = ".".join(leaf.path)
        metavar = {bool: "BOOL", int: "N", float: "X", str: "NAME"}.get(leaf.type, "N,N")
        group.add_argument("--" + name.replace("_", "-"), dest="cfg_" + name, metavar=metavar,
                           type=_converter(cls, name), default=None,
                           help=f"{path}, default {leaf.default!r}"
                                + (" (traced)" if leaf.traced else ""))
    for old, new in cls.LEGACY.items():
        if new is not None:
            group.add_argument("--" + old.replace("_", "-"), dest="legacy_" + old, metavar="V",
                               default=None, help=f"deprecated: use --{new.replace('_', '-')}")


def config_from_args(cls: type, args: argparse.Namespace):
    """The config the flags ask for (deprecated names converted)."""
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    for k, v in vars(args).items():
        if k.startswith("legacy_") and v is not None:
            old = k[len("legacy_"):]
            new = cls.LEGACY[old]
            v = cls.LEGACY_VALUES.get(old, {}).get(v, v)
            given[new] = config_lib.parse_value(cls, new, v) if isinstance(v, str) else v
    return config_lib.replace(cls(), **given)


def add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    """``--mesh`` and the multi-host flags (see :mod:`jaxmeta.distributed`)."""
    g = parser.add_argument_group("devices")
    g.add_argument("--mesh", default="",
                   help="device mesh over members and tasks: 'seeds=S,tasks=T', 'auto' (all "
                        "visible devices) or '' (one device, the default)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="multi-host: address of process 0 (jax.distributed.initialize)")
    g.add_argument("--num-processes", type=int, default=None, help="multi-host: process count")
    g.add_argument("--process-id", type=int, default=None, help="multi-host: this process")


def _env_overrides(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise ValueError(f"--env-arg expects NAME=VALUE, got {item!r}")
        out[k] = _parse_scalar(v)
    return out


def cmd_train(argv: list[str]) -> int:
    """``train``: meta-train ``--algo`` on ``--env`` with vmapped ``--seeds`` into ``--out``."""
    from jaxmeta import sweep
    from jaxmeta.trainer import TrainOptions, train

    pre = Parser(add_help=False)
    pre.add_argument("--algo", default="maml")
    known, _ = pre.parse_known_args(argv)
    cls = algorithms.config_class(known.algo)  # unknown names list the registered ones
    p = Parser(prog="python -m jaxmeta train",
                                description="Meta-train a method on a task family.")
    p.add_argument("--algo", default="maml", help=f"one of {algorithms.names()}")
    p.add_argument("--env", default="navigation2d", help=f"one of {envs.names()}")
    p.add_argument("--env-arg", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--seeds", type=int, default=1, help="vmapped seeds (per sweep point)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--chunk", type=int, default=10, help="iterations per compiled call")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--sweep", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="sweep a traced field; repeat for a grid "
                        f"({', '.join(config_lib.traced_names(cls))})")
    p.add_argument("--evaluate-every", type=int, default=0,
                   help="adapt on held-out tasks every N iterations (0: never)")
    p.add_argument("--eval-splits", default="train,test,ood")
    p.add_argument("--eval-tasks", type=int, default=40)
    p.add_argument("--eval-adapt-steps", type=int, default=3)
    p.add_argument("--eval-seed", type=int, default=12345)
    p.add_argument("--no-tensorboard", action="store_true")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    add_distributed_flags(p)
    add_config_flags(p, cls)
    args = p.parse_args(argv)
    from jaxmeta import distributed

    distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    family = envs.make(args.env, **_env_overrides(args.env_arg))  # validates before compiling
    learner = algorithms.make(args.algo, family, config_from_args(cls, args))
    if isinstance(family, envs.MJXFamily):
        how = {"mujoco": "MuJoCo's C engine", "mjx": "MJX"}[family.physics]
        print(f"physics: {family.physics} ({how}; --env-arg physics=mjx|mujoco chooses)")
    options = TrainOptions(
        iterations=args.iterations, seeds=args.seeds, seed=args.seed, chunk=args.chunk,
        checkpoint_every=args.checkpoint_every, progress=not args.no_progress, mesh=args.mesh,
        sweep=sweep.parse(args.sweep), evaluate_every=args.evaluate_every,
        eval_splits=tuple(s for s in args.eval_splits.split(",") if s),
        eval_tasks=args.eval_tasks, eval_adapt_steps=args.eval_adapt_steps,
        eval_seed=args.eval_seed, tensorboard=not args.no_tensorboard)
    train(learner, args.out, options, resume=args.resume)
    points = len(sweep.points(options.sweep))
    print(f"trained {args.algo} on {args.env}: {args.seeds} seed(s)"
          + (f" x {points} sweep points" if options.sweep else "")
          + f" x {args.iterations} iterations -> {args.out}")
    return 0


def _line(r: dict) -> str:
    post = ", ".join(f"{x:.2f}" for x in r["post_adapt_return"])
    return f"before {r['pre_adapt_return']:.2f}, after each step: {post}"


def cmd_eval(argv: list[str]) -> int:
    """``eval``: fast-adapt a saved run to tasks of ``--split``; ``--json`` prints one object
    (a sweep run: one entry per swept value under ``sweep``)."""
    from jaxmeta.evaluation import evaluate_run

    p = Parser(prog="python -m jaxmeta eval",
                                description="Fast-adapt a trained run to held-out tasks.")
    p.add_argument("run")
    p.add_argument("--split", default="test", help="train | test | ood")
    p.add_argument("--adapt-steps", type=int, default=3)
    p.add_argument("--num-tasks", type=int, default=40)
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation tasks")
    p.add_argument("--step", type=int, default=None, help="checkpoint (default: the latest)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    res = evaluate_run(args.run, args.split, args.num_tasks, args.adapt_steps, args.seed,
                       args.step)
    if args.json:
        print(json.dumps(res))
        return 0
    head = (f"{res['algo']} on {res['env']} [{args.split}, {args.num_tasks} tasks, iteration "
            f"{res['iteration']}]")
    if "sweep" not in res:
        print(f"{head}, {res['num_seeds']} seeds: {_line(res)}")
    for r in res.get("sweep", []):
        print(f"{head} {r['label']}, {r['num_seeds']} seeds: {_line(r)}")
    return 0


def cmd_video(argv: list[str]) -> int:
    """``video``: one task's episodes before and after each adaptation step, side by side,
    as an MP4 and/or a GIF (:mod:`jaxmeta.video`)."""
    from jaxmeta.video import main as video_main

    return video_main(argv)


def cmd_plot(argv: list[str]) -> int:
    """``plot``: write the learning curves of a run (mean ± std over seeds) as a PNG."""
    from jaxmeta.plot import plot_run

    p = Parser(prog="python -m jaxmeta plot")
    p.add_argument("run")
    p.add_argument("--out", default=None, help="PNG path (default RUN/curves.png)")
    args = p.parse_args(argv)
    print(plot_run(args.run, args.out))
    return 0


def cmd_envs(argv: list[str]) -> int:
    """``envs``: the registered task families (sizes, horizon, control step, splits)."""
    p = Parser(prog="python -m jaxmeta envs")
    p.add_argument("--json", action="store_true", help="one JSON object per family")
    args = p.parse_args(argv)
    rows = [envs.make(name).describe() for name in envs.names()]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"{'name':<22}{'obs':>5}{'act':>5}{'horizon':>9}{'dt':>7}  {'train':<11}summary")
    for r in rows:
        dt = f"{r['dt']:.3f}" if "dt" in r else "-"
        pool = f"{r['train_pool']} fixed" if r.get("train_pool") else "sampled"
        print(f"{r['name']:<22}{r['obs_size']:>5}{r['action_size']:>5}{r['horizon']:>9}{dt:>7}"
              f"  {pool:<11}{r['summary']}")
    print("splits: train, test (same distribution, fresh tasks), ood (held out; see each "
          "family's docstring or --json)")
    return 0


def cmd_bench(argv: list[str]) -> int:
    """``bench``: the benchmark suite (``--preset quick`` on a CPU; :mod:`jaxmeta.bench`)."""
    from jaxmeta.bench import main as bench_main

    return bench_main(argv)


def cmd_algos(argv: list[str]) -> int:
    """``algos``: the registered methods, their config classes and what they are."""
    for name in algorithms.names():
        e = algorithms.entry(name)
        print(f"{name:<13}{e.config.__name__:<17}{e.summary}")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "video": cmd_video, "plot": cmd_plot,
            "envs": cmd_envs, "algos": cmd_algos, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m jaxmeta``; returns the exit code (2 on bad input, 1 when
    training stopped on a non-finite value, 128 + signal number when a signal stopped it)."""
    from jaxmeta.interrupt import TrainingInterrupted
    from jaxmeta.runs import CorruptCheckpointError
    from jaxmeta.trainer import NonFiniteError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m jaxmeta {{{'|'.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (ValueError, OSError, CorruptCheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return 128 + e.signum


if __name__ == "__main__":
    sys.exit(main())
