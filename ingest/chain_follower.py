"""Follows a chain for a participant's custody wallets and publishes transfers and reserve snapshots.

Only blocks ``confirmations`` deep are read, so ordinary reorganisations never reach the monitor. A deeper
one is still caught: the checkpoint keeps the hash of recently processed blocks (and the events taken
from them); when a kept hash no longer matches the chain, every event from the abandoned blocks is
retracted and the blocks are read again from the newest common one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandboxwatch.ingest.chain_events import (
    Event,
    LogError,
    hex_of,
    native_transfer,
    reserve_event,
    retraction,
    transfer_from_log,
    units,
)
from sandboxwatch.ingest.checkpoint import Checkpoint
from sandboxwatch.ingest.erc20 import ABI, TRANSFER_TOPIC, address_topic
from sandboxwatch.ingest.event_sink import EventSink
from sandboxwatch.ingest.exchange_events import ingest_error
from sandboxwatch.ingest.retry import Backoff, ConnectorError, call_with_backoff, poll_forever
from sandboxwatch.ingest.settings import ChainSettings, SettingsError, Token, read_liabilities

log = logging.getLogger(__name__)


def classify_rpc(exc: BaseException) -> str | None:
    import requests

    text = str(exc).lower()
    if "429" in text or "rate limit" in text or "too many requests" in text:
        return "rate_limit"
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout | TimeoutError | OSError):
        return "transient"
    return None


def connect(settings: ChainSettings) -> Any:
    from web3 import Web3

    return Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": settings.timeout_s}))


class ChainFollower:
    def __init__(
        self,
        settings: ChainSettings,
        web3: Any,
        sink: EventSink,
        checkpoint: Checkpoint,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.last_answer_s: float | None = None
        self.w3 = web3
        self.sink = sink
        self.checkpoint = checkpoint
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.state = checkpoint.load()
        self.wallets = frozenset(settings.wallets)
        self.published = 0
        self.retracted = 0
        self.rejected = 0
        self._decimals: dict[str, int] = {t.address: t.decimals for t in settings.tokens if t.decimals is not None}
        self._tokens = {t.address: t for t in settings.tokens}

    # -- remote calls -------------------------------------------------------------------------------

    @property
    def source(self) -> str:
        return self.settings.chain

    def _rpc(self, what: str, operation: Callable[[], Any]) -> Any:
        result = call_with_backoff(operation, f"{self.settings.chain} {what}", classify_rpc, self.backoff, self.sleep)
        self.last_answer_s = self.clock()
        return result

    def positions(self) -> dict[str, int]:
        """When (wall-clock ms) the follower last had every confirmed block read."""
        value = self.state.get("read_to")
        return {} if value is None else {"blocks": int(value)}

    def _block(self, number: int, full: bool = False) -> Any:
        from web3.exceptions import BlockNotFound

        def get() -> Any:
            try:
                return self.w3.eth.get_block(number, full_transactions=full)
            except BlockNotFound:
                return None

        return self._rpc(f"block {number}", get)

    def _contract(self, address: str) -> Any:
        return self.w3.eth.contract(address=self.w3.to_checksum_address(address), abi=ABI)

    def _token_decimals(self, token: Token) -> int:
        if token.address not in self._decimals:
            contract = self._contract(token.address)
            self._decimals[token.address] = int(
                self._rpc(f"{token.asset} decimals", contract.functions.decimals().call)
            )
        return self._decimals[token.address]

    # -- checkpoint -----------------------------------------------------------------------------------

    @property
    def last_block(self) -> int | None:
        value = self.state.get("last_block")
        return None if value is None else int(value)

    def _hashes(self) -> dict[int, str]:
        return {int(k): v for k, v in self.state.get("hashes", {}).items()}

    def _emitted(self) -> dict[int, list[Event]]:
        return {int(k): v for k, v in self.state.get("emitted", {}).items()}

    def _save(self, last: int, hashes: dict[int, str], emitted: dict[int, list[Event]]) -> None:
        floor = last - self.settings.reorg_window
        self.state["last_block"] = last
        self.state["hashes"] = {str(n): h for n, h in sorted(hashes.items()) if n > floor}
        self.state["emitted"] = {str(n): e for n, e in sorted(emitted.items()) if n > floor}
        self.checkpoint.save(self.state)

    def _publish(self, events: list[Event]) -> None:
        if events:
            self.sink.publish(events)
            self.published += len(events)
            self.rejected += sum(1 for event in events if event.get("type") == "ingest_error")

    # -- the loop ---------------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Retract what a reorganisation abandoned, then read every newly confirmed block."""
        before = self.published + self.retracted
        asked_at = int(self.clock() * 1000)
        head = int(self._rpc("block number", lambda: self.w3.eth.block_number))
        safe = head - self.settings.confirmations
        if self.last_block is None:
            start = self.settings.start_block
            first = safe if start is None else start - 1
            if first >= 0:
                block = self._block(first)
                self._save(first, {first: hex_of(block["hash"])}, {})
            else:
                self._save(-1, {}, {})
        self._handle_reorg()
        last = self.last_block
        assert last is not None
        while last < safe:
            end = min(safe, last + self.settings.max_blocks_per_query)
            self._scan(last + 1, end, safe)
            last = end
        self.state["read_to"] = asked_at
        self.checkpoint.save(self.state)
        return self.published + self.retracted - before

    def _handle_reorg(self) -> None:
        hashes = self._hashes()
        if not hashes:
            return
        for number in sorted(hashes, reverse=True):
            block = self._block(number)
            if block is not None and hex_of(block["hash"]) == hashes[number]:
                break
        else:
            raise ConnectorError(
                f"{self.settings.chain}: reorganisation deeper than the {self.settings.reorg_window} tracked blocks "
                f"(no kept block hash matches the chain); set start_block and resync",
                transient=False,
            )
        newest = max(hashes)
        if number == newest:
            return
        emitted = self._emitted()
        abandoned = [event for n in sorted(emitted) if n > number for event in emitted[n]]
        reason = f"block(s) {number + 1}..{newest} left the canonical chain of {self.settings.chain}"
        log.warning("%s: reorganisation, retracting %d events (%s)", self.settings.chain, len(abandoned), reason)
        retractions = [retraction(event, reason) for event in abandoned]
        if retractions:
            self.sink.publish(retractions)
            self.retracted += len(retractions)
        if any(event.get("type") == "reserve" for event in abandoned) and self.settings.reserve_every_blocks:
            # The retracted snapshot left the monitor without a valid reserve figure: take a new one at the
            # confirmed tip of the new branch in this same poll, not a schedule's length later.
            self.state["next_reserve_block"] = 0
        self._save(
            number,
            {n: h for n, h in hashes.items() if n <= number},
            {n: e for n, e in emitted.items() if n <= number},
        )

    def _logs(self, first: int, last: int) -> list[Any]:
        if not self._tokens:
            return []
        addresses = [self.w3.to_checksum_address(a) for a in self._tokens]
        wallets = [address_topic(w) for w in self.settings.wallets]
        found: dict[tuple[str, int], Any] = {}
        for topics in ([TRANSFER_TOPIC, wallets], [TRANSFER_TOPIC, None, wallets]):
            query = {"fromBlock": first, "toBlock": last, "address": addresses, "topics": topics}
            for entry in self._rpc(f"logs {first}..{last}", lambda q=query: self.w3.eth.get_logs(q)):  # type: ignore[misc]
                found[(hex_of(entry["blockHash"]), int(entry["logIndex"]))] = entry
        return sorted(found.values(), key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))

    def _scan(self, first: int, last: int, safe: int) -> None:
        """Publish the events of blocks first..last; keep the hash of every one of them that lies within the
        reorganisation window of the confirmed tip, so a fork is traced back to the exact block."""
        settings = self.settings
        hashes, emitted = self._hashes(), self._emitted()
        headers: dict[int, Any] = {}

        def header(number: int) -> Any:
            if number not in headers:
                block = self._block(number, full=settings.native_asset is not None)
                if block is None:
                    raise ConnectorError(f"{settings.chain}: block {number} vanished during the scan", transient=True)
                headers[number] = block
            return headers[number]

        by_block: dict[int, list[Event]] = {}
        for entry in self._logs(first, last):
            number = int(entry["blockNumber"])
            block = header(number)
            if hex_of(block["hash"]) != hex_of(entry["blockHash"]):
                raise ConnectorError(f"{settings.chain}: block {number} changed during the scan", transient=True)
            token = self._tokens[hex_of(entry["address"])]
            try:
                event = transfer_from_log(
                    dict(entry),
                    settings.participant,
                    settings.chain,
                    token.asset,
                    self._token_decimals(token),
                    block["timestamp"],
                )
            except LogError as exc:
                log.error("%s: %s", settings.chain, exc)
                event = ingest_error(settings.participant, f"{settings.chain} logs", None, str(exc), _jsonable(entry))
            by_block.setdefault(number, []).append(event)
        if settings.native_asset is not None:
            for number in range(first, last + 1):
                self._native(header(number), by_block)
        # One snapshot per poll, at the confirmed tip: catching up on old blocks must not flood the monitor
        # with reserves of the past.
        snapshot_at = self._reserve_due(last) if last == safe else None
        if snapshot_at is not None:
            by_block.setdefault(snapshot_at, []).extend(self._reserves(header(snapshot_at)))
        for number in range(max(first, safe - settings.reorg_window + 1), last + 1):
            header(number)
        events = [event for number in sorted(by_block) for event in by_block[number]]
        self._publish(events)
        for number, block_events in by_block.items():
            emitted[number] = [e for e in block_events if e.get("type") != "ingest_error"]
        for number, block in headers.items():
            hashes[number] = hex_of(block["hash"])
        hashes[last] = hex_of(header(last)["hash"])
        self._save(last, hashes, emitted)

    def _native(self, block: Any, by_block: dict[int, list[Event]]) -> None:
        settings = self.settings
        assert settings.native_asset is not None
        block_hash = hex_of(block["hash"])
        for tx in block["transactions"]:
            sender, recipient = str(tx["from"]).lower(), str(tx.get("to") or "").lower()
            if int(tx["value"]) > 0 and (sender in self.wallets or recipient in self.wallets):
                event = native_transfer(
                    dict(tx),
                    int(block["number"]),
                    block_hash,
                    settings.participant,
                    settings.chain,
                    settings.native_asset,
                    block["timestamp"],
                )
                by_block.setdefault(int(block["number"]), []).append(event)

    def _reserve_due(self, last: int) -> int | None:
        every = self.settings.reserve_every_blocks
        if not every:
            return None
        due = int(self.state.get("next_reserve_block", 0))
        if last < due:
            return None
        self.state["next_reserve_block"] = last + every
        return last

    def _balance_call(self, contract: Any, wallet: str, number: int) -> Callable[[], Any]:
        call = contract.functions.balanceOf(self.w3.to_checksum_address(wallet)).call
        return lambda: call(block_identifier=number)

    def _native_balance_call(self, wallet: str, number: int) -> Callable[[], Any]:
        return lambda: self.w3.eth.get_balance(self.w3.to_checksum_address(wallet), number)

    def _reserves(self, block: Any) -> list[Event]:
        settings = self.settings
        assert settings.liabilities_file is not None
        number, block_hash = int(block["number"]), hex_of(block["hash"])
        try:
            liabilities = read_liabilities(settings.liabilities_file)
        except SettingsError as exc:
            return [ingest_error(settings.participant, f"{settings.chain} reserves", None, str(exc), None)]
        holdings: list[tuple[str, str]] = []
        for token in settings.tokens:
            contract = self._contract(token.address)
            total = 0
            for wallet in settings.wallets:
                total += int(self._rpc(f"{token.asset} balanceOf", self._balance_call(contract, wallet, number)))
            holdings.append((token.asset, units(total, self._token_decimals(token))))
        if settings.native_asset is not None:
            total = sum(int(self._rpc("balance", self._native_balance_call(w, number))) for w in settings.wallets)
            holdings.append((settings.native_asset, units(total, 18)))
        events: list[Event] = []
        for asset, custody in holdings:
            owed = liabilities.get(asset)
            if owed is None:
                reason = f"{settings.liabilities_file} has no client liability figure for {asset}"
                events.append(ingest_error(settings.participant, f"{settings.chain} reserves", asset, reason, None))
                continue
            events.append(
                reserve_event(
                    settings.participant,
                    settings.chain,
                    asset,
                    number,
                    block_hash,
                    block["timestamp"],
                    custody,
                    Decimal(owed),
                    len(settings.wallets),
                )
            )
        return events

    def run(self, once: bool = False, stop: Callable[[], bool] = lambda: False) -> None:
        def poll() -> str:
            count = self.poll_once()
            return f"{self.settings.chain}: up to block {self.last_block}, {count} events this poll"

        poll_forever(poll, self.settings.poll_interval_s, self.sleep, once, stop)


def _jsonable(entry: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(entry).items():
        if isinstance(value, bytes | bytearray):
            out[key] = hex_of(value)
        elif isinstance(value, list):
            out[key] = [hex_of(v) if isinstance(v, bytes | bytearray) else v for v in value]
        else:
            out[key] = value
    return out
