"""Logins for the chat page: credentials from RAG_AUTH or a file (a password given on the command line
shows in `ps`), and failed logins limited per client address.
"""

from __future__ import annotations

import json
import logging
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.core.errors import ConfigError

log = logging.getLogger(__name__)

LOGIN_PATHS = ("/login", "/login/")
MAX_FAILURES = 5  # failed logins from one address within WINDOW_S, then refused until the oldest expires
WINDOW_S = 60.0
FAILURE_DELAY_S = 0.5  # every failed login also waits this long before its answer
MAX_ADDRESSES = 10_000  # addresses remembered at once (the oldest are forgotten first)


def parse_credential(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.strip().partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"{where} must look like user:password")
    return user, password


def read_credentials(auth: str, auth_file: Path | None) -> list[tuple[str, str]]:
    """The (user, password) pairs from the ``auth`` setting (RAG_AUTH) and the ``auth_file`` setting
    (one user:password a line; blank lines and lines starting with # are ignored)."""
    pairs = [parse_credential(auth, "auth (RAG_AUTH)")] if auth else []
    if auth_file is not None:
        try:
            text = auth_file.read_text(encoding="utf-8")
            mode = auth_file.stat().st_mode
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read auth_file {auth_file}: {e}") from e
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("auth_file %s can be read by other users; run `chmod 600 %s`", auth_file, auth_file)
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                pairs.append(parse_credential(line, f"line {number} of {auth_file}"))
        if not pairs:
            raise ConfigError(f"auth_file {auth_file} holds no user:password line")
    return pairs


class FailureLog:
    """Failed logins per address within a sliding window. Thread-safe; ``clock`` is for tests."""

    def __init__(
        self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times

    def wait_s(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        with self._lock:
            now = self.clock()
            times = self._recent(address, now)
            if len(times) < self.max_failures:
                return 0.0
            return self.window_s - (now - times[0])

    def failed(self, address: str) -> None:
        with self._lock:
            now = self.clock()
            times = self._recent(address, now)
            times.append(now)
            self._failures.pop(address, None)
            self._failures[address] = times  # newest last: the oldest addresses are forgotten first
            while len(self._failures) > MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


class LoginThrottle:
    """ASGI middleware in front of gradio's POST /login: an address with too many recent failures gets
    429 and a Retry-After without its password being checked; each failure is answered slowly."""

    def __init__(self, app: Any, failures: FailureLog) -> None:
        self.app = app
        self.failures = failures

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope.get("path", "").endswith(LOGIN_PATHS):
            await self.app(scope, receive, send)
            return
        import asyncio

        address = (scope.get("client") or ("unknown", 0))[0]
        wait = self.failures.wait_s(address)
        if wait > 0:
            log.info("login refused for %s: too many failed logins (retry in %.0f s)", address, wait)
            await _refuse(send, wait)
            return
        status: dict[str, int] = {}

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if message["status"] != 200:
                    self.failures.failed(address)
                    log.info("failed login from %s", address)
                    await asyncio.sleep(FAILURE_DELAY_S)
                else:
                    self.failures.succeeded(address)
            await send(message)

        await self.app(scope, receive, watch)


async def _refuse(send: Any, wait_s: float) -> None:
    seconds = max(1, round(wait_s))
    body = json.dumps({"detail": f"Too many failed logins from your address; try again in {seconds} s."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(seconds).encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
