"""`python -m bench.herd`: its arguments and its report, checked without a server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.herd import (
    LARGE,
    MAX_CONCURRENCY,
    SMALL,
    Herd,
    HerdConfig,
    HerdRound,
    format_table,
    parse_args,
    release_first_ok,
)
from bench.rawhttp import RawResponse

ROOT = Path(__file__).resolve().parents[2]
UNAVAILABLE = RawResponse(503, {}, b'{"error": {"code": "temporal_timeout", "message": "slow"}}')


class SwallowingClient:
    """Answers 503 after 10 ms, and swallows the first cancellation that lands meanwhile, as
    Python 3.11's `asyncio.wait_for` (inside `RawClient.get`) can when the answer arrives."""

    def __init__(self) -> None:
        self.answered = 0
        self.swallowed = False

    async def get(self, path: str, headers: dict[str, str] | None = None) -> RawResponse:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed = True
        self.answered += 1
        return UNAVAILABLE

    async def aclose(self) -> None:
        return None


class AnsweringClient:
    """Answers 200 with an ETag, then 304 to a request that sends it back."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    async def get(self, path: str, headers: dict[str, str] | None = None) -> RawResponse:
        self.sent.append((path, dict(headers or {})))
        if (headers or {}).get("If-None-Match") == 'W/"7"':
            return RawResponse(304, {"etag": 'W/"7"'}, b"")
        return RawResponse(200, {"etag": 'W/"7"'}, b"{}")

    async def aclose(self) -> None:
        return None


def _round(
    *,
    hogs: int,
    concurrency: int,
    firsts: tuple[float | None, ...],
    every_user_s: float | None,
    statuses: dict[str, int],
    transport_errors: int = 0,
) -> HerdRound:
    return HerdRound(
        hogs=hogs,
        concurrency=concurrency,
        users=20,
        seconds=60.0,
        release_first_ok_s=firsts,
        every_user_s=every_user_s,
        statuses=statuses,
        unavailable_codes={"temporal_timeout": statuses.get("503", 0)},
        unavailable_p50_s=1.8,
        unavailable_fast=0,
        transport_errors=transport_errors,
        list_calls=67,
        list_calls_needed=41,
        temporal_calls=70,
        refresh_cycles=21,
        server_cores=0.9,
        server_cpu_wait=1.61,
        api_cores=0.5,
        api_cpu_wait=0.3,
        herd_cores=0.2,
        load_average_start=[5.04, 4.0, 3.0],
        load_average_end=[7.96, 5.0, 3.5],
    )


def test_the_defaults_are_the_reported_scenario() -> None:
    """No arguments run what `HerdConfig()` (the in-process default) runs, and what the README's
    reliability table reports: N users x M releases of 1,206, bound 2 then unbounded (64)."""
    config, json_path, workdir = parse_args([])
    assert config == HerdConfig()
    assert (json_path, workdir) == (None, None)
    assert config.shape is LARGE
    assert config.concurrency == (2, MAX_CONCURRENCY)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    reported = f"{config.users} users x {config.releases} releases of {LARGE.entities:,}"
    assert reported in readme


def test_every_option_is_parsed_in_order() -> None:
    """Repeated bounds and several hog counts are kept in the order given."""
    config, json_path, workdir = parse_args(
        [
            "--releases",
            "3",
            "--users",
            "5",
            "--seconds",
            "12.5",
            "--concurrency",
            "2",
            "64",
            "2",
            "--hogs",
            "0",
            "4",
            "--no-etag",
            "--small",
            "--json",
            "out/herd.json",
            "--workdir",
            "logs",
        ]
    )
    assert config == HerdConfig(
        releases=3,
        users=5,
        seconds=12.5,
        concurrency=(2, 64, 2),
        hogs=(0, 4),
        shape=SMALL,
        etag=False,
    )
    assert (json_path, workdir) == (Path("out/herd.json"), Path("logs"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--concurrency", "0"],
        ["--concurrency", "65"],
        ["--hogs", "-1"],
        ["--users", "0"],
        ["--seconds", "0"],
    ],
)
def test_values_the_api_or_the_run_cannot_take_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A bound outside the setting's 1-64, negative hogs, no users or no time: usage error 2."""
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_release_first_answers_when_any_user_first_gets_it() -> None:
    """Per release the earliest user's first 200, in release order; None if nobody got it."""
    first_ok = {(0, "rel-b"): 4.0, (1, "rel-b"): 2.5, (1, "rel-a"): 7.25}
    assert release_first_ok(first_ok, ["rel-a", "rel-b", "rel-c"]) == (7.25, 2.5, None)


def test_derived_figures_count_never_loaded_releases_and_failed_connections() -> None:
    """A release never answered leaves 'all releases' unknown; requests include transport errors."""
    partial = _round(
        hogs=4,
        concurrency=64,
        firsts=(3.0, None),
        every_user_s=None,
        statuses={"200": 20, "503": 183},
        transport_errors=2,
    )
    figures = partial.to_json()
    assert (figures["loaded"], figures["releases"], figures["all_releases_s"]) == (1, 2, None)
    assert (figures["requests"], figures["unavailable"]) == (205, 183)
    complete = _round(
        hogs=0, concurrency=2, firsts=(3.0, 1.5), every_user_s=4.0, statuses={"200": 40}
    )
    assert (complete.loaded, complete.all_releases_s) == (2, 3.0)


def test_the_table_has_one_row_per_round_then_the_per_release_times() -> None:
    """The printed report: aligned columns, 'never' for what never happened, then each round's
    time to a first 200 per release."""
    rounds = [
        _round(
            hogs=0,
            concurrency=2,
            firsts=(0.85, 6.14),
            every_user_s=6.3,
            statuses={"200": 40, "304": 100, "503": 12},
        ),
        _round(
            hogs=4,
            concurrency=64,
            firsts=(61.0, None),
            every_user_s=None,
            statuses={"200": 20, "503": 183},
            transport_errors=2,
        ),
    ]
    assert format_table(rounds).splitlines() == [
        "hogs  conc  loaded  first 200 s: first / half / all  every user s  503 / requests"
        "  lists / needed / cycles  server wait s/s    load avg",
        "   0     2     2/2                  0.8 / 0.8 / 6.1           6.3        12 / 152"
        "             67 / 41 / 21             1.61  5.0 -> 8.0",
        "   4    64     1/2              61.0 / 61.0 / never         never       183 / 205"
        "             67 / 41 / 21             1.61  5.0 -> 8.0",
        "hogs 0, concurrency 2: first 200 per release (s): 0.8 6.1",
        "hogs 4, concurrency 64: first 200 per release (s): 61.0 never",
    ]


async def test_the_herd_ends_at_its_deadline_even_if_a_user_swallows_its_cancellation() -> None:
    """Never answered: every request is a counted 503, nothing loads, and the run still ends."""
    clients: list[SwallowingClient] = []

    def new_client() -> SwallowingClient:
        clients.append(SwallowingClient())
        return clients[-1]

    herd = Herd(new_client, ["rel-a", "rel-b"], HerdConfig(users=3, seconds=0.2, retry_seconds=0.0))
    await asyncio.wait_for(herd.run(), 10)
    answered = sum(client.answered for client in clients)
    assert len(clients) == 3
    assert any(client.swallowed for client in clients)
    assert answered > 0
    assert herd.statuses == {"503": answered}
    assert herd.unavailable_codes == {"temporal_timeout": answered}
    assert (herd.first_ok, herd.every_user_s, herd.transport_errors) == ({}, None, 0)


async def test_the_herd_stops_once_every_user_has_every_release() -> None:
    """All answered at once: one request per user and release, well before the 60 s limit."""
    clients: list[AnsweringClient] = []

    def new_client() -> AnsweringClient:
        clients.append(AnsweringClient())
        return clients[-1]

    herd = Herd(new_client, ["rel-a", "rel-b"], HerdConfig(users=2, seconds=60.0))
    await asyncio.wait_for(herd.run(), 10)
    assert set(herd.first_ok) == {(0, "rel-a"), (0, "rel-b"), (1, "rel-a"), (1, "rel-b")}
    assert herd.statuses == {"200": 4}
    assert sorted(clients[0].sent) == [
        ("/api/releases/rel-a/hierarchy", {}),
        ("/api/releases/rel-b/hierarchy", {}),
    ]
    assert herd.every_user_s == max(herd.first_ok.values())
