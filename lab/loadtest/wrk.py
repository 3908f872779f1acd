"""Drive a server with `wrk` (closed loop, one fixed POST body) and read its results as data.

wrk is the independent client of the serving benchmarks: written in C on an epoll loop,
it sends single-row requests several times faster than any Python client on the same
cores, so the server, not the client, is what a run measures. Closed loop: each of
`connections` connections sends its next request as soon as the previous answer
arrives, with no back-off, also after a 503.

A generated Lua script sets the body and headers, counts answers by status (and 503s
without Retry-After) in every wrk thread, and its `done()` prints one JSON line with
the counts and latency percentiles over all answers. wrk keeps one latency histogram
for every status; `ok_p99_bound_ms` turns it into a bound on the p99 of the 200s alone:
if a fraction f of the answers are 200s, at most 1% of them can be slower than the
overall (100 - f)th percentile.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "WRK_JSON "

_SCRIPT = r"""
local body_file = assert(io.open(%(body_path)s, "rb"))
wrk.method = "POST"
wrk.body = body_file:read("*a")
body_file:close()
%(headers)s

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  missing_retry_after = 0
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 503 then
    local found = false
    for name, _ in pairs(headers) do
      if string.lower(name) == "retry-after" then found = true end
    end
    if not found then missing_retry_after = missing_retry_after + 1 end
  end
end

function done(summary, latency, requests)
  local counts, missing, answered = {}, 0, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
      answered = answered + n
    end
    missing = missing + thread:get("missing_retry_after")
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%%d": %%d', status, n))
  end
  local ok_share = answered > 0 and (counts[200] or 0) / answered or 0
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"duration_s": %%.3f, "answered": %%d, "statuses": {%%s}, ' ..
    '"missing_retry_after": %%d, "errors": {"connect": %%d, "read": %%d, "write": %%d, ' ..
    '"timeout": %%d}, "p50_ms": %%.3f, "p90_ms": %%.3f, "p99_ms": %%.3f, ' ..
    '"p999_ms": %%.3f, "max_ms": %%.3f, "ok_p99_bound_ms": %%.3f}\n',
    summary.duration / 1e6, answered, table.concat(parts, ", "), missing,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency:percentile(99.9) / 1e3, latency.max / 1e3,
    latency:percentile(100 - ok_share) / 1e3))
end
"""


@dataclass(frozen=True)
class Request:
    """The one request wrk sends over and over."""

    path: str
    body: bytes
    headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "application/json"})


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run saw: counts by status, transport errors, latency over all answers."""

    connections: int
    duration_s: float
    answered: int
    statuses: dict[int, int]
    missing_retry_after: int
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    ok_p99_bound_ms: float

    @property
    def ok_rps(self) -> float:
        """200s per second."""
        return self.statuses.get(200, 0) / self.duration_s

    @property
    def rps(self) -> float:
        """Answers of any status per second."""
        return self.answered / self.duration_s

    @property
    def all_ok(self) -> bool:
        return self.answered > 0 and self.statuses.get(200, 0) == self.answered and not any(
            self.errors.values())

    def summary(self) -> dict:
        return {"connections": self.connections, "rps": round(self.rps, 1),
                "ok_rps": round(self.ok_rps, 1),
                "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
                "missing_retry_after": self.missing_retry_after, "errors": self.errors,
                "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "p999_ms": self.p999_ms,
                "max_ms": self.max_ms, "ok_p99_bound_ms": self.ok_p99_bound_ms}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(port: int, request: Request, connections: int, duration_s: float, *,
            threads: int = 2, timeout_s: float = 2.0) -> WrkResult:
    """One closed-loop wrk run of `duration_s` seconds; requests slower than `timeout_s`
    count as timeouts (wrk's own rule), not in the latency percentiles."""
    with script_command(port, request, connections, duration_s, threads=threads,
                        timeout_s=timeout_s) as command:
        completed = subprocess.run(command, capture_output=True, text=True, check=False,
                                   timeout=duration_s + timeout_s + 30)
    return parse_output(completed.stdout, connections, completed.stderr)


@contextlib.contextmanager
def script_command(port: int, request: Request, connections: int, duration_s: float, *,
                   threads: int = 2, timeout_s: float = 2.0) -> Iterator[list[str]]:
    """The wrk command line, valid while its generated script and body file exist;
    for a caller that runs wrk in the background (`run_wrk` runs it to the end)."""
    with tempfile.TemporaryDirectory(prefix="wrk-") as folder:
        body_path = Path(folder) / "body"
        body_path.write_bytes(request.body)
        script_path = Path(folder) / "post.lua"
        headers = "\n".join(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}"
                            for name, value in request.headers.items())
        script_path.write_text(_SCRIPT % {"body_path": _lua_string(str(body_path)),
                                          "headers": headers, "marker": MARKER})
        yield ["wrk", "-t", str(min(threads, connections)), "-c", str(connections),
               "-d", f"{duration_s:g}s", "--timeout", f"{timeout_s:g}s",
               "-s", str(script_path), f"http://127.0.0.1:{port}{request.path}"]


def parse_output(stdout: str, connections: int, stderr: str = "") -> WrkResult:
    """The JSON line the script's `done()` printed."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER):])
            data["statuses"] = {int(code): n for code, n in data["statuses"].items()}
            return WrkResult(connections=connections, **data)
    raise RuntimeError(f"wrk printed no results:\n{stdout[-2000:]}\n{stderr[-2000:]}")


def _lua_string(text: str) -> str:
    """A Lua string literal; JSON's escapes are a subset Lua reads the same way."""
    return json.dumps(text)
