"""Subcommands for operating the flywheel: compare, services, deploy, submit (argument parsing + printing).

The work happens in the sibling modules; these functions only turn arguments into calls and results into
lines a person reads.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

from flywheel.errors import FlywheelError

SERVICES_HOME = "~/.cache/flywheel/services"


def add_parsers(sub, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register the operating subcommands on the main parser's subparsers."""
    cp = sub.add_parser("compare", help="table + chart (PNG, HTML) of a run's rounds")
    cp.add_argument(
        "--source",
        choices=["store", "mlflow"],
        default="store",
        help="stage manifests on the store, or the rounds' MLflow parent runs",
    )
    cp.add_argument("--out", default=None, help="report directory (default {run.root}/reports)")
    cp.add_argument("--rounds", default=None, help="comma-separated rounds (default: all)")
    cp.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    common(cp)

    ex = sub.add_parser("export", help="a round's or the run's SFT and preference sets as a datasets.DatasetDict")
    ex.add_argument("--out", required=True, help="directory for DatasetDict.save_to_disk")
    ex.add_argument("--rounds", default=None, help="comma-separated rounds (default: every round with datasets)")
    common(ex)

    sv = sub.add_parser("services", help="local Prefect server + worker and MLflow UI on 127.0.0.1")
    sv_sub = sv.add_subparsers(dest="action", required=True)
    for action, text in (
        ("up", "start them (kept if already running)"),
        ("down", "stop what `up` started"),
        ("status", "what runs, where to open it, its log"),
    ):
        a = sv_sub.add_parser(action, help=text)
        a.add_argument("--home", default=SERVICES_HOME, help="state dir: databases, logs, pid files")
        if action == "up":
            a.add_argument("--prefect-port", type=int, default=4200)
            a.add_argument("--mlflow-port", type=int, default=5000)
            a.add_argument("--no-worker", action="store_true", help="server only (no process worker)")
            a.add_argument("--no-mlflow", action="store_true", help="no MLflow UI")
            a.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each service")
        common(a)  # one grammar: every action takes the profile and overrides (down/status need none of them)

    dp = sub.add_parser("deploy", help="register the round/iterate Prefect deployments (needs PREFECT_API_URL)")
    dp.add_argument("--pool", default="flywheel", help="process work pool")
    dp.add_argument("--run", choices=["round", "iterate"], default=None, help="also run a deployment and wait")
    dp.add_argument("--round", type=int, default=1, help="with --run round: the round")
    dp.add_argument("--rounds", type=int, default=1, help="with --run iterate: rounds 1..K")
    dp.add_argument("--timeout", type=float, default=None, help="seconds to wait for the run")
    common(dp)

    sb = sub.add_parser("submit", help="run a flywheel command as a Ray job on a cluster")
    sb.add_argument("--address", required=True, help="Ray dashboard URL, e.g. http://127.0.0.1:8265")
    sb.add_argument("--working-dir", default=".", help="uploaded as the job's working dir (default: .)")
    sb.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="job env var (no secrets)")
    sb.add_argument("--runtime-env", default=None, help="YAML with extra runtime_env fields (pip, env_vars, ...)")
    sb.add_argument("--python", default="python", help="interpreter on the cluster nodes")
    sb.add_argument("--no-wait", action="store_true", help="print the job id and return")
    sb.add_argument("--timeout", type=float, default=None, help="seconds to follow the job")
    sb.add_argument("command", nargs=argparse.REMAINDER, help="-- iterate|stage|status|compare ...")


def dispatch(args) -> int:
    cmds = {
        "compare": cmd_compare,
        "export": cmd_export,
        "services": cmd_services,
        "deploy": cmd_deploy,
        "submit": cmd_submit,
    }
    return cmds[args.cmd](args)


def cmd_export(args) -> int:
    from flywheel.config import load_config
    from flywheel.ops.export import export_round_sets
    from flywheel.store import Store

    cfg = load_config(args.config, args.overrides)
    store = Store(cfg.run.root, cfg.run.storage_options)
    rounds = _int_list(args.rounds) if args.rounds else [r for r in store.rounds() if store.manifest(r, "datasets")]
    if not rounds:
        raise FlywheelError(f"{cfg.run.root}: no round has published datasets yet")
    counts = export_round_sets(store, rounds, args.out)
    sets = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"rounds {','.join(map(str, rounds))} -> {args.out} ({sets}); datasets.load_from_disk({args.out!r})")
    return 0


def cmd_compare(args) -> int:
    from rich.console import Console

    from flywheel.config import load_config
    from flywheel.ops.compare import compare
    from flywheel.ops.report import table
    from flywheel.rounds import stage_list

    cfg = load_config(args.config, args.overrides)
    rounds = _int_list(args.rounds) if args.rounds else None
    rows, paths = compare(cfg, source=args.source, out=args.out, rounds=rounds)
    if args.json:
        print(json.dumps({"rows": rows, "report": paths}, indent=2, default=str))
        return 0
    console = Console()
    console.print(table(rows, stage_list(cfg), f"flywheel run {cfg.run.name}: rounds ({args.source})"))
    for r in rows:
        console.print(f"round {r['round']}: generator {r['generator'] or '?'}")
    console.print(f"chart: {paths['png']}\nreport: {paths['html']}")
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise FlywheelError(f"--rounds {text!r}: expected comma-separated integers") from None


def cmd_services(args) -> int:
    from flywheel.ops import services

    home = os.path.expanduser(args.home)
    if args.action == "down":
        stopped = services.stop(home)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if args.action == "up":
        uri = None
        if not args.no_mlflow:
            uri = _run_tracking_uri(args)
        plan = services.plan(home, args.prefect_port, args.mlflow_port, tracking_uri=uri, worker=not args.no_worker)
        services.start(plan, home, cwd=os.getcwd(), timeout=args.timeout)
        print("Prefect and the process worker for pool 'flywheel' are up. In your shell:\n")
        print(services.shell_exports(home, args.prefect_port))
        print("\nthen `flywheel deploy --config ...` to register the round/iterate deployments.\n")
    return _print_services(home)


def _run_tracking_uri(args) -> str | None:
    from flywheel.config import load_config, redact
    from flywheel.store import Store
    from flywheel.tracking import tracking_uri

    cfg = load_config(args.config, args.overrides)
    if cfg.tracking.uri.startswith(("http://", "https://")):
        print(f"MLflow: the run tracks to {redact(cfg.tracking.uri)}; open that")
        return None
    store = Store(cfg.run.root, cfg.run.storage_options)
    return tracking_uri(cfg.tracking, store, os.path.expanduser(cfg.run.cache_dir), cfg.run.name)


def _print_services(home: str) -> int:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"flywheel services ({home})")
    for col in ("service", "pid", "state", "open", "log"):
        t.add_column(col)
    for rec in services_rows(home):
        t.add_row(*rec)
    Console().print(t)
    return 0


def services_rows(home: str) -> list[tuple[Any, ...]]:
    from flywheel.ops.services import recorded

    rows = []
    for rec in recorded(home):
        state = "[green]up[/]" if rec["healthy"] else ("[yellow]starting[/]" if rec["alive"] else "[red]exited[/]")
        rows.append((rec["name"], str(rec["pid"]), state, rec["url"], rec["log"]))
    return rows


def cmd_deploy(args) -> int:
    from flywheel.config import load_config
    from flywheel.ops import deploy

    load_config(args.config, args.overrides)  # a bad profile fails here, not in the UI an hour later
    ids = deploy.deploy(deploy.specs(args.config, list(args.overrides)), pool=args.pool)
    for name, dep_id in ids.items():
        print(f"deployment {name} ({dep_id})")
    if args.run:
        common = {"config": args.config, "overrides": list(args.overrides)}
        params = (
            {"round_idx": args.round, **common} if args.run == "round" else {"first": 1, "last": args.rounds, **common}
        )
        name = "flywheel-round/round" if args.run == "round" else "flywheel-iterate/iterate"
        out = deploy.trigger(name, params, timeout=args.timeout)
        print(f"flow run {out['name']} ({out['id']}): {out['state']}")
    return 0


def cmd_submit(args) -> int:
    from flywheel.ops import submit

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    extra: Any = None
    if args.runtime_env:
        from omegaconf import OmegaConf

        extra = OmegaConf.to_container(OmegaConf.load(args.runtime_env), resolve=True)
        if not isinstance(extra, dict):
            raise FlywheelError(f"{args.runtime_env}: runtime env must be a mapping")
    client, job_id = submit.submit(
        args.address,
        command,
        working_dir=args.working_dir,
        env=submit.parse_env(args.env),
        extra_runtime_env=extra,
        python=args.python,
    )
    print(f"submitted Ray job {job_id} to {args.address}")
    if args.no_wait:
        print(f"follow it with: ray job logs --follow --address {args.address} {job_id}")
        return 0
    status = submit.wait(client, job_id, timeout=args.timeout)
    print(f"Ray job {job_id}: {status}")
    return 0
