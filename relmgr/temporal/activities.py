"""The deploy activity: simulated by default, or a command run per app when one is configured.

A real deploy step is plugged in with `RELMGR_DEPLOY_COMMAND`, a command template whose arguments
may use {app}, {cluster}, {app_id} and {attempt}; it runs without a shell, each argument formatted
on its own, so an app name can never inject another argument or command. Exit status 0 is success;
anything else fails this attempt with the last lines of the command's output as the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shlex
import time

from temporalio import activity
from temporalio.exceptions import ApplicationError

from relmgr.settings import get_settings
from relmgr.temporal.messages import DEPLOY_FAILED, DeployRequest, DeployResult

_HEARTBEAT_SECONDS = 1.0
_OUTPUT_TAIL = 500


def simulated_outcome(request: DeployRequest) -> tuple[float, bool]:
    """How long a simulated attempt takes and whether it fails; the same for the same seed."""
    options = request.options
    rng = random.Random(f"{options.seed}:{request.app_id}:{request.attempt}")
    low, high = sorted((options.min_seconds, options.max_seconds))
    seconds = rng.uniform(low, high)
    forced = request.app in options.fail_apps and (
        options.fail_attempts == 0 or request.attempt <= options.fail_attempts
    )
    fails = forced or rng.random() < options.failure_rate
    return seconds, fails


def command_arguments(template: str, request: DeployRequest) -> list[str]:
    """The argv of a deploy command; each template word is formatted on its own."""
    fields = {
        "app": request.app,
        "cluster": request.cluster,
        "app_id": request.app_id,
        "attempt": str(request.attempt),
    }
    try:
        return [word.format(**fields) for word in shlex.split(template)]
    except (KeyError, IndexError, ValueError) as exc:
        raise ApplicationError(
            f"RELMGR_DEPLOY_COMMAND is not a usable template ({exc}); "
            "use only {app}, {cluster}, {app_id} and {attempt}",
            type=DEPLOY_FAILED,
            non_retryable=True,
        ) from None


async def _simulate(request: DeployRequest) -> DeployResult:
    seconds, fails = simulated_outcome(request)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        activity.heartbeat(f"deploying {request.app} to {request.cluster}")
        await asyncio.sleep(min(left, _HEARTBEAT_SECONDS))
    if fails:
        raise ApplicationError(
            f"deploy of {request.app} to {request.cluster} failed: simulated error "
            f"(attempt {request.attempt})",
            type=DEPLOY_FAILED,
            non_retryable=True,
        )
    return DeployResult(app_id=request.app_id, seconds=round(seconds, 3), output="simulated")


async def _run_command(template: str, limit: float, request: DeployRequest) -> DeployResult:
    argv = command_arguments(template, request)
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise ApplicationError(
            f"deploy command {argv[0]!r} could not start: {exc.strerror}",
            type=DEPLOY_FAILED,
            non_retryable=True,
        ) from None
    communicate = asyncio.ensure_future(process.communicate())
    try:
        while not communicate.done():
            if time.monotonic() - started > limit:
                raise ApplicationError(
                    f"deploy command timed out after {limit:g} s",
                    type=DEPLOY_FAILED,
                    non_retryable=True,
                )
            activity.heartbeat(f"running {argv[0]} for {request.app}")
            await asyncio.wait({communicate}, timeout=_HEARTBEAT_SECONDS)
    finally:
        if not communicate.done():
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.gather(communicate, return_exceptions=True)
    output, _ = communicate.result()
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        tail = text[-_OUTPUT_TAIL:] or "(no output)"
        raise ApplicationError(
            f"deploy command exited with status {process.returncode}: {tail}",
            type=DEPLOY_FAILED,
            non_retryable=True,
        )
    return DeployResult(
        app_id=request.app_id,
        seconds=round(time.monotonic() - started, 3),
        output=text[-_OUTPUT_TAIL:],
    )


@activity.defn(name="deploy_app")
async def deploy_app(request: DeployRequest) -> DeployResult:
    """Deploy one app to one cluster, heartbeating while it runs."""
    settings = get_settings()
    if settings.deploy_command:
        return await _run_command(settings.deploy_command, settings.deploy_command_timeout, request)
    return await _simulate(request)
