"""Controls: the one place that changes a release, by sending an operator's action as an Update.

`ControlSender` is the seam front ends use (importing it loads no Temporal SDK, like the reader's
protocol); `relmgr.control.controller.Controller` is the one implementation, created lazily by
the API's start-up and the dashboard's runtime.
"""

from __future__ import annotations

from typing import Protocol

from relmgr.models import Control
from relmgr.temporal.messages import ControlRequest, ControlResult

__all__ = ["ControlSender"]


class ControlSender(Protocol):
    """What front ends need of a controller (tests of routes may pass a fake)."""

    async def send(
        self, action: Control, target_id: str, request: ControlRequest, *, request_id: str
    ) -> ControlResult:
        """Send `action` to `target_id`; its result, or a `relmgr.errors` error."""
        ...
