"""Limits at the HTTP layer: what a client may send before the routes see a request.

uvicorn's httptools protocol buffers a request's line and headers without a
bound and waits for them without a deadline. ``limited_protocol(limits)``
is that protocol with the limits of ``Limits`` (each a flag of
``scripts.serve``), each refusal a short response and a closed connection:

  request line over ``max_request_line`` bytes        414 URI Too Long
  headers over ``max_header_bytes`` bytes in all,     431 Request Header Fields Too Large
    or more than ``max_headers`` of them (a header
    still arriving is counted as its bytes come)
  a request line and headers not complete within      408 Request Timeout
    ``header_timeout`` seconds of the connection or
    of the request's first byte (a slow or silent client)
  more than ``max_connections`` open connections      503 Service Unavailable, at connect

An idle keep-alive connection is closed after ``keep_alive_timeout`` seconds
(uvicorn's). Bodies are the routes' (``routes.py``): their size, their
deadline, and the draining of a body over the limit so that the client reads
its 413.
"""

import asyncio
import json
from typing import NamedTuple

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REASONS = {408: "Request Timeout", 414: "URI Too Long",
           431: "Request Header Fields Too Large", 503: "Service Unavailable"}


class Limits(NamedTuple):
  max_request_line: int = 8192
  max_header_bytes: int = 16384
  max_headers: int = 100
  header_timeout: float = 10.0
  max_connections: int = 1000


class _Refused(Exception):
  """A request past a limit: its status and message (raised from a parser callback)."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def refusal(status: int, message: str) -> bytes:
  """A complete HTTP/1.1 response with a JSON {"error": ...} body that closes the connection."""
  body = json.dumps({"error": message}).encode()
  return (f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
          f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
  """One connection: the request being parsed, its sizes so far, its header deadline."""

  limits = Limits()  # limited_protocol's subclass sets its own

  def connection_made(self, transport) -> None:
    self._refused, self._limit, self._head_bytes = False, None, 0
    self._deadline: asyncio.TimerHandle | None = None
    super().connection_made(transport)
    if len(self.connections) > self.limits.max_connections:
      self._refuse(503, f"more than {self.limits.max_connections} open connections; try again "
                   "later")
      return
    self._arm_deadline()

  def connection_lost(self, exc) -> None:
    self._disarm_deadline()
    super().connection_lost(exc)

  def data_received(self, data: bytes) -> None:
    """uvicorn's, but a limit's refusal (raised from a parser callback, which httptools
    reports as a parser error) answers its own status, and nothing after it is read."""
    if self._refused:
      return
    self._unset_keepalive_if_required()
    try:
      self.parser.feed_data(data)
    except httptools.HttpParserUpgrade:
      if self._should_upgrade():
        self.handle_websocket_upgrade()
      else:
        self._unsupported_upgrade_warning()
    except httptools.HttpParserError:
      if self._limit is not None:
        self._refuse(self._limit.status, str(self._limit))
      else:
        self.logger.warning("Invalid HTTP request received.")
        self.send_400_response("Invalid HTTP request received.")
      return
    if self._head_bytes is not None:  # everything read since the request began is its head
      self._head_bytes += len(data)
      if self._head_bytes > self.limits.max_request_line + self.limits.max_header_bytes:
        self._refuse(431, "the request line and headers are over the limit of "
                     f"{self.limits.max_request_line + self.limits.max_header_bytes} bytes")

  def on_message_begin(self) -> None:
    super().on_message_begin()
    self._line_bytes = self._header_bytes = self._header_count = 0
    if self._head_bytes is None:  # the next request of a kept-alive connection
      self._head_bytes = 0
    if self._deadline is None:
      self._arm_deadline()

  def on_url(self, url: bytes) -> None:
    self._line_bytes += len(url)
    if self._line_bytes > self.limits.max_request_line:
      self._stop(414, f"the request line is over the limit of {self.limits.max_request_line} bytes")
    super().on_url(url)

  def on_header(self, name: bytes, value: bytes) -> None:
    self._header_bytes += len(name) + len(value) + 4  # "name: value\r\n"
    self._header_count += 1
    if self._header_bytes > self.limits.max_header_bytes:
      self._stop(431, f"the headers are over the limit of {self.limits.max_header_bytes} bytes")
    if self._header_count > self.limits.max_headers:
      self._stop(431, f"more than {self.limits.max_headers} headers")
    super().on_header(name, value)

  def _stop(self, status: int, message: str) -> None:
    """Stops the parser from a callback; ``data_received`` sends the refusal."""
    self._limit = _Refused(status, message)
    raise self._limit

  def on_headers_complete(self) -> None:
    self._disarm_deadline()
    self._head_bytes = None  # the body's bytes are the routes' to count
    super().on_headers_complete()

  def _arm_deadline(self) -> None:
    self._deadline = self.loop.call_later(self.limits.header_timeout, self._refuse, 408,
                                          f"no complete request line and headers within "
                                          f"{self.limits.header_timeout:g} s")

  def _disarm_deadline(self) -> None:
    if self._deadline is not None:
      self._deadline.cancel()
      self._deadline = None

  def _refuse(self, status: int, message: str) -> None:
    self._refused = True
    self._disarm_deadline()
    if not self.transport.is_closing():
      self.transport.write(refusal(status, message))
      self.transport.close()


def limited_protocol(limits: Limits) -> type:
  """uvicorn's httptools protocol with ``limits`` (module docstring)."""
  return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
