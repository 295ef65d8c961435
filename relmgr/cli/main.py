"""The `relmgr` command: `dev`, `worker`, `seed`, `users add|remove|revoke` and `api`.

Every option of `relmgr dev` can also be set by its `RELMGR_*` variable (`--data-dir` is
RELMGR_DATA_DIR, `--temporal-port` RELMGR_TEMPORAL_PORT, ...); `worker` and `seed` connect to
RELMGR_TEMPORAL_ADDRESS / RELMGR_TEMPORAL_NAMESPACE (defaults localhost:7233 / default).

Exit status: 0 done, 1 a problem relmgr explains in one line (busy port, no `temporal` binary,
Temporal unreachable, ...), 2 a usage error (bad option, impossible `seed` shape), 130 Ctrl-C
outside `dev` and `worker` (which stop cleanly and exit 0). Never a traceback for these.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from relmgr.auth.roles import parse_role
from relmgr.auth.users import add_user, remove_user, revoke_sessions
from relmgr.errors import ConfigError, RelmgrError, TemporalUnavailableError
from relmgr.settings import Settings, check_bind, get_settings
from relmgr.temporal.client import connect
from relmgr.temporal.contract import TASK_QUEUE
from relmgr.temporal.messages import OnFailure
from relmgr.temporal.seed import SimulationSpec, simulation_spec, start_simulation
from relmgr.temporal.worker import build_worker

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]


class _UsageError(Exception):
    """A value argparse accepted but the command cannot use: reported like argparse's own."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def _role(text: str) -> str:
    try:
        return parse_role(text).value
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `relmgr` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="relmgr",
        description="Operations dashboard for software releases orchestrated by Temporal.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log more, e.g. every connection attempt"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev",
        help="run everything locally: Temporal dev server, worker, demo releases, API, dashboard",
        description=(
            "Start a real Temporal dev server (SQLite in the data directory, relmgr's search "
            "attributes registered), the worker, the demo releases (first run only), the API "
            "and the Streamlit dashboard; print the URLs and how to sign in. Ctrl-C stops "
            "everything. Each option can also be set by the RELMGR_ variable named beside it."
        ),
    )
    dev.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where state is kept (RELMGR_DATA_DIR; .relmgr)",
    )
    dev.add_argument(
        "--temporal-port",
        type=_port,
        metavar="N",
        help="Temporal gRPC port (RELMGR_TEMPORAL_PORT; 7233)",
    )
    dev.add_argument(
        "--temporal-ui-port",
        type=_port,
        metavar="N",
        help="Temporal Web UI (RELMGR_TEMPORAL_UI_PORT; 8233)",
    )
    dev.add_argument(
        "--api-port", type=_port, metavar="N", help="REST API port (RELMGR_API_PORT; 8000)"
    )
    dev.add_argument(
        "--ui-port", type=_port, metavar="N", help="dashboard port (RELMGR_UI_PORT; 8501)"
    )
    dev.add_argument("--no-seed", action="store_true", help="do not start the demo releases")
    dev.add_argument("--no-api", action="store_true", help="do not start the REST API")
    dev.add_argument("--no-ui", action="store_true", help="do not start the dashboard")
    dev.set_defaults(handler=_dev)

    worker = commands.add_parser(
        "worker",
        help="run the worker of the reference release workflows until Ctrl-C",
        description=(
            "Run the release workflows and the deploy activity against RELMGR_TEMPORAL_ADDRESS / "
            "RELMGR_TEMPORAL_NAMESPACE. Set RELMGR_DEPLOY_COMMAND to run a real deploy step."
        ),
    )
    worker.add_argument(
        "--task-queue", default=TASK_QUEUE, help=f"task queue to poll (default {TASK_QUEUE})"
    )
    worker.set_defaults(handler=_worker)

    seed = commands.add_parser(
        "seed",
        help="start simulated releases; prints their IDs, one per line",
        description=(
            "Start RELEASES simulated releases of WAVES x CLUSTERS x 1 bundle x APPS on "
            "RELMGR_TEMPORAL_ADDRESS; a worker (`relmgr worker` or `relmgr dev`) runs them. "
            "Prints each release ID on stdout as it starts; messages go to stderr."
        ),
    )
    seed.add_argument("--waves", type=int, required=True, help="waves per release (1-99)")
    seed.add_argument("--clusters", type=int, required=True, help="clusters per wave (1-1000)")
    seed.add_argument("--apps", type=int, required=True, help="apps per bundle (1-1000)")
    seed.add_argument("--releases", type=int, default=1, help="how many releases (default 1)")
    seed.add_argument(
        "--app-seconds",
        type=float,
        default=2.0,
        help="mean seconds per app deploy, drawn from 0.5x-1.5x (default 2)",
    )
    seed.add_argument(
        "--failure-rate",
        type=float,
        default=0.0,
        help="probability that one deploy attempt fails, 0-1 (default 0)",
    )
    seed.add_argument("--seed", type=int, default=0, help="random seed of the simulation")
    seed.add_argument(
        "--name",
        help="release name prefix: IDs are rel-NAME-1, rel-NAME-2, ... (default sim-<timestamp>)",
    )
    seed.add_argument(
        "--approval-gates",
        action="store_true",
        help="every wave after the first waits (AWAITING_APPROVAL) until an operator approves it",
    )
    seed.add_argument(
        "--on-failure",
        choices=[o.value for o in OnFailure],
        default=OnFailure.FAIL.value,
        help="fail: an app that fails after its retries fails its release (default); hold: it "
        "stays FAILED and holds its wave open until an operator retries it or cancels",
    )
    seed.add_argument(
        "--task-queue", default=TASK_QUEUE, help=f"task queue of the worker (default {TASK_QUEUE})"
    )
    seed.set_defaults(handler=_seed)

    users = commands.add_parser("users", help="manage the users file (RELMGR_USERS_FILE)")
    users_commands = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    add = users_commands.add_parser(
        "add",
        help="add or replace a user (bcrypt hash only)",
        description=(
            "Add or replace a user in the users file that the dashboard and the API share. "
            "The password is read from stdin (--password-stdin) or asked for on a terminal; "
            "only its bcrypt hash is written."
        ),
    )
    add.add_argument("username")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True, help="display name")
    add.add_argument(
        "--role",
        type=_role,
        default="viewer",
        help="viewer (read), operator (read and control releases) or admin (also manage "
        "users); default viewer",
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (one line)"
    )
    add.add_argument(
        "--users-file", type=Path, help="users file (default RELMGR_USERS_FILE; users.yaml)"
    )
    add.set_defaults(handler=_users_add)

    remove = users_commands.add_parser(
        "remove",
        help="remove a user (every session and token of theirs ends)",
        description="Remove a user from the users file; their sessions and tokens end with it.",
    )
    remove.add_argument("username")
    remove.add_argument(
        "--users-file", type=Path, help="users file (default RELMGR_USERS_FILE; users.yaml)"
    )
    remove.set_defaults(handler=_users_remove)

    revoke = users_commands.add_parser(
        "revoke",
        help="end every dashboard session and API token of a user",
        description=(
            "End every dashboard session and API token of USERNAME, on every replica, at its "
            "next users-file reload (the user can sign in again; see also `users remove`)."
        ),
    )
    revoke.add_argument("username")
    revoke.add_argument(
        "--users-file", type=Path, help="users file (default RELMGR_USERS_FILE; users.yaml)"
    )
    revoke.set_defaults(handler=_users_revoke)

    api = commands.add_parser("api", help="serve the REST API (uvicorn)")
    api.add_argument(
        "--host", default="127.0.0.1", metavar="H", help="address to bind (default 127.0.0.1)"
    )
    api.add_argument("--port", type=_port, metavar="N", help="port (RELMGR_API_PORT; 8000)")
    api.set_defaults(handler=_api)

    dashboard = commands.add_parser(
        "dashboard",
        help="serve the Streamlit dashboard (streamlit run, with the dashboard's own settings)",
        description=(
            "Serve the dashboard that ships with this installation, with the Streamlit settings "
            "it ships with, on RELMGR_TEMPORAL_ADDRESS. The process becomes `streamlit run`, so "
            "a service manager's signals reach Streamlit itself."
        ),
    )
    dashboard.add_argument(
        "--host", default="127.0.0.1", metavar="H", help="address to bind (default 127.0.0.1)"
    )
    dashboard.add_argument("--port", type=_port, metavar="N", help="port (RELMGR_UI_PORT; 8501)")
    dashboard.set_defaults(handler=_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `relmgr` with `argv` (default: the command line) and return the exit status.

    Called as a program (no `argv`), it ends the process itself once output is flushed: the
    Temporal SDK's Rust threads can outlive the event loop and abort CPython's finalization
    ("Fatal Python error: PyGILState_Release", exit 134; temporalio/sdk-python#300), which would
    turn a successful `relmgr seed` into a crash.
    """
    status = _run_command(argv, as_program=argv is None)
    if argv is None:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _run_command(argv: Sequence[str] | None, *, as_program: bool) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for a usage error, 0 for --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if as_program:  # a process's logging is its program's to set, not a library call's
        _configure_logging(verbose=args.verbose)
    command = " ".join(filter(None, [args.command, getattr(args, "users_command", None)]))
    handler: Handler = args.handler
    try:
        return handler(args)
    except _UsageError as exc:
        print(f"relmgr {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RelmgrError as exc:
        print(f"relmgr {command}: {exc.message}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        print(f"relmgr {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _configure_logging(*, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # Each failed connection attempt is logged there; the final error says it all in one line.
        logging.getLogger("relmgr.temporal.client").setLevel(logging.ERROR)


# ---------------------------------------------------------------------------------------------
# Commands.


def _dev(args: argparse.Namespace) -> int:
    from relmgr.cli.dev import DevConfig, run_dev  # the dev machinery is not needed by the others

    config = DevConfig.from_settings(
        get_settings(),
        data_dir=args.data_dir,
        temporal_port=args.temporal_port,
        temporal_ui_port=args.temporal_ui_port,
        api_port=args.api_port,
        ui_port=args.ui_port,
        seed=not args.no_seed,
        api=not args.no_api,
        ui=not args.no_ui,
    )
    run_dev(config)
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    settings = get_settings()
    asyncio.run(_run_worker(settings, args.task_queue))
    return EXIT_OK


async def _run_worker(settings: Settings, task_queue: str) -> None:
    client = await connect(settings, identity=f"relmgr-worker@{socket.gethostname()}")
    worker = build_worker(client, task_queue=task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    print(
        f"relmgr worker: polling task queue {task_queue!r} on {settings.temporal_address} "
        f"(namespace {settings.temporal_namespace!r}); Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        stopping.cancel()
    if running.done():
        problem = running.exception()
        raise TemporalUnavailableError(f"the worker stopped: {problem or 'no reason given'}")
    print("relmgr worker: stopping", file=sys.stderr, flush=True)
    await worker.shutdown()
    await asyncio.gather(running, return_exceptions=True)


def _seed(args: argparse.Namespace) -> int:
    try:
        spec = simulation_spec(
            waves=args.waves,
            clusters=args.clusters,
            apps=args.apps,
            releases=args.releases,
            app_seconds=args.app_seconds,
            failure_rate=args.failure_rate,
            seed=args.seed,
            name=args.name,
            approval_gates=args.approval_gates,
            on_failure=OnFailure(args.on_failure),
        )
    except ConfigError as exc:
        raise _UsageError(exc.message) from None
    settings = get_settings()
    total = spec.workflow_count
    print(
        f"relmgr seed: starting {spec.releases} release(s) of {spec.waves}x{spec.clusters}x"
        f"{spec.apps} ({total:,} workflows in all) on {settings.temporal_address}, "
        f"task queue {args.task_queue!r}",
        file=sys.stderr,
        flush=True,
    )
    asyncio.run(_start_releases(settings, spec, args.task_queue))
    return EXIT_OK


async def _start_releases(settings: Settings, spec: SimulationSpec, task_queue: str) -> None:
    client = await connect(settings, retries=1, identity=f"relmgr-seed@{socket.gethostname()}")
    async for release_id in start_simulation(client, spec, task_queue=task_queue):
        print(release_id, flush=True)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        lines = sys.stdin.read().splitlines()
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        raise _UsageError("give the password on stdin with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise _UsageError("the two passwords differ")
    return first


def _users_add(args: argparse.Namespace) -> int:
    path: Path = args.users_file or get_settings().users_file
    password = _read_password(args.password_stdin)
    user = add_user(
        path,
        username=args.username,
        email=args.email,
        name=args.name,
        password=password,
        roles=(args.role,),
    )
    print(
        f"relmgr users add: {user.username} ({', '.join(user.roles)}) saved in {path}",
        file=sys.stderr,
    )
    return EXIT_OK


def _users_remove(args: argparse.Namespace) -> int:
    path: Path = args.users_file or get_settings().users_file
    user = remove_user(path, args.username)
    print(f"relmgr users remove: {user.username} removed from {path}", file=sys.stderr)
    return EXIT_OK


def _users_revoke(args: argparse.Namespace) -> int:
    path: Path = args.users_file or get_settings().users_file
    user = revoke_sessions(path, args.username)
    print(
        f"relmgr users revoke: every session and token of {user.username} ends at the next "
        f"reload of {path}",
        file=sys.stderr,
    )
    return EXIT_OK


def _api(args: argparse.Namespace) -> int:
    # Imported here: fastapi and uvicorn are heavy, and the other commands do not need them.
    from relmgr.api.server import serve

    settings = get_settings()
    check_bind(settings, args.host)  # before the heavy import's work: a quick, clear refusal
    serve(settings, host=args.host, port=args.port if args.port is not None else settings.api_port)
    return EXIT_OK


def _dashboard(args: argparse.Namespace) -> int:
    from relmgr.cli.dashboard import require_dashboard, streamlit_command

    settings = get_settings()
    port = args.port if args.port is not None else settings.ui_port
    argv = streamlit_command(require_dashboard(), host=args.host, port=port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606 - argv built by relmgr, no shell
