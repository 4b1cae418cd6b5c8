"""The ``flywheel`` command.

    flywheel iterate --round N | --rounds K [--config PATH] [key=value ...]
    flywheel stage NAME --round N [--config PATH] [key=value ...]
    flywheel status [--json] [--config PATH] [key=value ...]
    flywheel models pull smollm2
    flywheel compare [--source store|mlflow] [--out DIR] [--config PATH] [key=value ...]
    flywheel services up|down|status [--config PATH] [key=value ...]
    flywheel deploy [--run round|iterate --round N] [--config PATH] [key=value ...]
    flywheel reward train [--data PATH] [--out DIR] | reward eval [--model DIR] [--data PATH] [--baseline]
    flywheel submit --address URL [--working-dir DIR] [--env K=V] -- iterate --round N --config PATH ...

Errors the user can fix (bad config key, corrupt JSONL line, missing model directory, unreachable store)
print one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from flywheel import console
from flywheel.errors import FlywheelError, Terminated


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None, help="YAML profile (e.g. configs/tiny.yaml)")
    # key=value overrides may stand anywhere after the subcommand; main() collects them
    p.set_defaults(overrides=[])


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="flywheel", description="Iterative weak-to-strong alignment rounds.")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)

    it = sub.add_parser("iterate", help="run round N, or rounds 1..K (resuming finished stages)")
    which = it.add_mutually_exclusive_group(required=True)
    which.add_argument("--round", type=int, help="run this round (its generator is round N-1's promoted model)")
    which.add_argument("--rounds", type=int, help="run rounds 1..K")
    it.add_argument("--no-prefect", action="store_true", help="run stages directly, without the Prefect flow")
    _common(it)

    st = sub.add_parser("stage", help="run one stage of a round")
    st.add_argument(
        "name",
        help="reward (run level) | prompts | dialogues | responses | judge | datasets | train | evaluate | promote",
    )
    st.add_argument("--round", type=int, required=True)
    _common(st)

    ss = sub.add_parser("status", help="each round's stages: done / pending / failed")
    ss.add_argument("--json", action="store_true")
    _common(ss)

    md = sub.add_parser("models", help="model bootstrap")
    md_sub = md.add_subparsers(dest="action", required=True)
    pull = md_sub.add_parser("pull", help="download and convert a model (smollm2)")
    pull.add_argument("name", choices=["smollm2"])
    pull.add_argument("--cache-dir", default=None, help="default: the profile's run.cache_dir (~/.cache/flywheel)")
    _common(pull)

    from flywheel.ops.commands import add_parsers

    add_parsers(sub, _common)
    from flywheel.reward.commands import add_parser as add_reward_parser

    add_reward_parser(sub, _common)
    return ap


def cmd_iterate(args) -> int:
    from flywheel.config import check_shipped_overrides, load_config
    from flywheel.rounds import open_run, run_rounds

    first, last = (args.round, args.round) if args.round else (1, args.rounds)
    if first < 1 or last < 1:
        raise FlywheelError("--round/--rounds must be >= 1")
    cfg = load_config(args.config, list(args.overrides))
    if not args.no_prefect:
        check_shipped_overrides(list(args.overrides), "the Prefect flow run's parameters (or use --no-prefect)")
    if not args.verbose:  # library output and every worker's lines to a log file; progress on the terminal
        console.quiet(console.log_dir(cfg.run.root, cfg.run.cache_dir, cfg.run.name))
    try:
        open_run(args.config, args.overrides)  # check the store, lock the root, reach MLflow: before heavy work
        if args.no_prefect:
            run_rounds(first, last, args.config, list(args.overrides))
        else:
            os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
            if not args.verbose:  # a failed task is reported once, by flywheel, in one line
                os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
            from flows.round import iterate

            iterate(first, last, args.config, list(args.overrides))
    finally:
        if not args.verbose:  # Ray prints its deduplicated worker lines when it stops: into the log file
            from flywheel.engines.pool import stop_ray
            from flywheel.rounds import close_all

            close_all()
            stop_ray()
        console.restore()
    return _print_status(args, rounds=range(first, last + 1))


def cmd_stage(args) -> int:
    from flywheel.rounds import close_all, open_run, run_stage

    try:
        out = run_stage(open_run(args.config, args.overrides), args.round, args.name)
    finally:
        close_all()
    print(json.dumps(out))
    return 0


def _print_status(args, rounds=None, as_json: bool = False) -> int:
    from flywheel.config import load_config
    from flywheel.rounds import run_status, status
    from flywheel.store import Store

    cfg = load_config(args.config, args.overrides)
    rows = status(cfg, Store(cfg.run.root, cfg.run.storage_options))
    if not rows and not Store(cfg.run.root, cfg.run.storage_options).rounds():
        print(f"flywheel run {cfg.run.name} ({cfg.run.root}): nothing has run yet")
        return 0
    if rounds is not None:
        rows = [r for r in rows if r["round"] in rounds]
    store = Store(cfg.run.root, cfg.run.storage_options)
    if as_json:
        print(json.dumps({"root": cfg.run.root, "run": run_status(store), "rounds": rows}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"flywheel run {cfg.run.name} ({cfg.run.root})")
    table.add_column("stage")
    for r in rows:
        table.add_column(f"round {r['round']}")
    style = {"done": "[green]done[/]", "failed": "[red]failed[/]", "pending": "[dim]pending[/]"}
    names = list(rows[0]["stages"]) if rows else []
    for n in names:
        table.add_row(n, *[style[r["stages"][n]] for r in rows])
    table.add_row(
        "promotion",
        *[
            "" if "promoted" not in r else ("[green]promoted[/]" if r["promoted"] else "[yellow]kept generator[/]")
            for r in rows
        ],
    )
    run_level = run_status(store)
    judge = run_level.get("reward_accuracy", {})
    print(
        f"run-level: reward {run_level['reward']}"
        + (
            f" ({'trained' if run_level.get('reward_trained') else 'UNTRAINED head'}, held-out pairwise accuracy "
            f"{judge.get('accuracy/all', float('nan')):.3f})"
            if judge
            else ""
        )
    )
    screen = Console(width=None if sys.stdout.isatty() else 160)  # a log file or CI: rows unwrapped
    screen.print(table)
    results = _results_table(store, [r["round"] for r in rows])
    if results is not None:
        screen.print(results)
    for r in rows:
        if "reason" in r:
            print(
                f"round {r['round']}: {'promoted' if r['promoted'] else 'not promoted'} ({r['reason']}); "
                f"next generator: {r['generator']}"
            )
    return 0


def _results_table(store, rounds: list[int]):
    """Held-out results per round: the initial model (round 0), then each round's candidate and its promotion."""
    from rich.table import Table

    evals = {r: m for r in rounds if (m := store.manifest(r, "evaluate")) is not None}
    if not evals:
        return None
    first = evals[min(evals)]["metrics"]
    table = Table(title="held-out suites (candidate of each round; round 0 = the initial model)")
    for col in ("round", "IF prompt (strict)", "IF instr. (loose)", "math", "reward", "win rate", "promoted", "why"):
        table.add_column(col, justify="right" if col not in ("promoted", "why") else "left")

    def cells(m: dict, prefix: str) -> list[str]:
        keys = ("if_prompt_strict", "if_instruction_loose", "math_accuracy", "reward")
        return [f"{m[f'{prefix}_{k}']:.3f}" if f"{prefix}_{k}" in m else "-" for k in keys]

    table.add_row("0", *cells(first, "initial"), "-", "", "initial model")
    for r, man in sorted(evals.items()):
        m = man["metrics"]
        promo = store.manifest(r, "promote")
        pm = promo["metrics"] if promo else {}
        why = f"IF {pm['if_delta']:+.3f} [{pm['if_low']:+.3f}, {pm['if_high']:+.3f}]" if "if_delta" in pm else ""
        verdict = "" if promo is None else ("yes" if promo["outputs"]["decision"]["promoted"] else "no")
        table.add_row(str(r), *cells(m, "candidate"), f"{m.get('win_rate', float('nan')):.3f}", verdict, why)
    return table


def cmd_models(args) -> int:
    from flywheel.config import load_config
    from flywheel.models import pull_smollm2, smollm2_dir

    cfg = load_config(args.config, args.overrides)
    cache_dir = args.cache_dir or cfg.run.cache_dir
    converted = os.path.isfile(os.path.join(smollm2_dir(cache_dir), "model.safetensors"))
    if not args.verbose and not converted:  # the converter's progress bars and warnings go to the log file
        console.quiet(console.log_dir(cfg.run.root, cfg.run.cache_dir, cfg.run.name))
    try:
        out = pull_smollm2(cache_dir)
    finally:
        console.restore()
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args, extra = ap.parse_known_args(argv)
    bad = [e for e in extra if "=" not in e or e.startswith("-")]
    if bad:
        ap.error(f"unrecognized arguments: {' '.join(bad)}")
    if extra and not hasattr(args, "overrides"):
        ap.error(f"{args.cmd} takes no key=value overrides: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    console.setup_logging(args.verbose)
    from flywheel.rounds import offline_env

    offline_env()
    try:
        if args.cmd == "iterate":
            return cmd_iterate(args)
        if args.cmd == "stage":
            return cmd_stage(args)
        if args.cmd == "status":
            return _print_status(args, as_json=args.json)
        if args.cmd == "models":
            return cmd_models(args)
        if args.cmd == "reward":
            from flywheel.reward.commands import run as run_reward

            return run_reward(args)
        if args.cmd in ("compare", "export", "services", "deploy", "submit"):
            from flywheel.ops.commands import dispatch

            return dispatch(args)
    except FlywheelError as err:
        print(f"flywheel: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        term = isinstance(err, Terminated) or Terminated.received
        how = "terminated" if term else "interrupted"
        print(f"flywheel: {how}; finished stages are kept, re-run the same command to resume", file=sys.stderr)
        return 143 if term else 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
