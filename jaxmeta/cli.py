"""Command line: ``python -m jaxmeta train|eval|plot|envs|algos|bench``.

Every field of the algorithm config is a flag (``--inner-lr 0.1``,
``--hidden-sizes 64,64``, ``--remat true``); env constructor arguments are given as
``--env-arg horizon=50``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing

from jaxmeta import algorithms, envs


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def _int_tuple(s: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in s.split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {s!r}") from None


def _parse_scalar(s: str):
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def add_config_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """Adds one ``--field-name`` flag per dataclass field of ``cls``."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} (algorithm config)")
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        conv = {int: int, float: float, str: str, bool: _bool}.get(t, _int_tuple)
        group.add_argument("--" + f.name.replace("_", "-"), dest="cfg_" + f.name, type=conv,
                           default=None, help=f"default: {f.default!r}")


def add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    """``--mesh`` and the multi-host flags (see :mod:`jaxmeta.distributed`)."""
    g = parser.add_argument_group("devices")
    g.add_argument("--mesh", default="",
                   help="device mesh over seeds and tasks: 'seeds=S,tasks=T', 'auto' (all "
                        "visible devices) or '' (one device, the default)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="multi-host: address of process 0 (jax.distributed.initialize)")
    g.add_argument("--num-processes", type=int, default=None, help="multi-host: process count")
    g.add_argument("--process-id", type=int, default=None, help="multi-host: this process")


def _config_from_args(cls: type, args: argparse.Namespace):
    overrides = {f.name: getattr(args, "cfg_" + f.name) for f in dataclasses.fields(cls)
                 if getattr(args, "cfg_" + f.name) is not None}
    return cls(**overrides)


def _env_overrides(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--env-arg expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = _parse_scalar(v)
    return out


def cmd_train(argv: list[str]) -> int:
    """``train``: meta-train ``--algo`` on ``--env`` with vmapped ``--seeds`` into ``--out``."""
    from jaxmeta.train import TrainOptions, train

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--algo", default="maml")
    known, _ = pre.parse_known_args(argv)
    if known.algo not in algorithms.names():
        raise ValueError(f"unknown algo {known.algo!r}; registered algos: "
                         f"{', '.join(algorithms.names())}")
    cls = algorithms.config_class(known.algo)
    p = argparse.ArgumentParser(prog="python -m jaxmeta train",
                                description="Meta-train a method on a task family.")
    p.add_argument("--algo", default="maml", help=f"one of {algorithms.names()}")
    p.add_argument("--env", default="navigation2d", help=f"one of {envs.names()}")
    p.add_argument("--env-arg", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--seeds", type=int, default=1, help="number of vmapped seeds")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--chunk", type=int, default=10, help="iterations per compiled call")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    add_distributed_flags(p)
    add_config_flags(p, cls)
    args = p.parse_args(argv)
    from jaxmeta import distributed

    distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    env_overrides = _env_overrides(args.env_arg)
    family = envs.make(args.env, **env_overrides)  # validates the name before compiling
    config = _config_from_args(cls, args)
    options = TrainOptions(iterations=args.iterations, seeds=args.seeds, seed=args.seed,
                           chunk=args.chunk, checkpoint_every=args.checkpoint_every,
                           progress=not args.no_progress, mesh=args.mesh)
    learner = algorithms.make(args.algo, family, config)
    run_config = {"algo": args.algo, "env": args.env, "env_overrides": env_overrides,
                  "config": dataclasses.asdict(config)}
    train(learner, args.out, options, run_config, resume=args.resume)
    print(f"trained {args.algo} on {args.env}: {args.seeds} seed(s) x {args.iterations} "
          f"iterations -> {args.out}")
    return 0


def cmd_eval(argv: list[str]) -> int:
    """``eval``: fast-adapt a saved run to tasks of ``--split``; ``--json`` prints one object."""
    import jax

    from jaxmeta.evaluate import evaluate, load_run

    p = argparse.ArgumentParser(prog="python -m jaxmeta eval",
                                description="Fast-adapt a trained run to held-out tasks.")
    p.add_argument("run")
    p.add_argument("--split", default="test", help="train | test | ood")
    p.add_argument("--adapt-steps", type=int, default=3)
    p.add_argument("--num-tasks", type=int, default=40)
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation tasks")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    envs.check_split(args.split)
    learner, states, desc, step = load_run(args.run)
    res = evaluate(learner, states, jax.random.PRNGKey(args.seed), args.split, args.num_tasks,
                   args.adapt_steps)
    res.update({"algo": desc["algo"], "env": desc["env"], "iteration": step})
    if args.json:
        print(json.dumps(res))
    else:
        post = ", ".join(f"{x:.2f}" for x in res["post_adapt_return"])
        print(f"{desc['algo']} on {desc['env']} [{args.split}, {args.num_tasks} tasks, "
              f"{res['num_seeds']} seeds]: before {res['pre_adapt_return']:.2f}, "
              f"after each step: {post}")
    return 0


def cmd_plot(argv: list[str]) -> int:
    """``plot``: write the learning curves of a run (mean ± std over seeds) as a PNG."""
    from jaxmeta.plot import plot_run

    p = argparse.ArgumentParser(prog="python -m jaxmeta plot")
    p.add_argument("run")
    p.add_argument("--out", default=None, help="PNG path (default RUN/curves.png)")
    args = p.parse_args(argv)
    print(plot_run(args.run, args.out))
    return 0


def cmd_envs(argv: list[str]) -> int:
    """``envs``: the registered task families (sizes, horizon, control step, splits)."""
    p = argparse.ArgumentParser(prog="python -m jaxmeta envs")
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
    """``bench``: the benchmark suite (``--quick`` on a CPU; see :mod:`jaxmeta.bench`)."""
    from jaxmeta.bench import main as bench_main

    return bench_main(argv)


def cmd_algos(argv: list[str]) -> int:
    """``algos``: the registered method names."""
    print("\n".join(algorithms.names()))
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "plot": cmd_plot, "envs": cmd_envs,
            "algos": cmd_algos, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m jaxmeta``; returns the exit code (2 on bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m jaxmeta {{{'|'.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
