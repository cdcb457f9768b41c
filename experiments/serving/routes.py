"""The HTTP routes of the prediction server (Starlette): the token check, errors, metrics.

Each route is a plain ``async def handler(server, request)``; ``_guarded``
wraps it with the token check (every route but /healthz, the login page's
own assets, when a token is set), turns ``BadRequest`` into a JSON
{"error": ...} with its status, and counts and times the request. A client
that goes away before its request is read is counted (status 499, as nginx
logs it) and nothing else: no response, no log line. Decoding an image body
and parsing a large JSON body run in the server's worker threads
(``Server.offload``), never on the event loop, so /healthz and every other
request keep answering while they run. ``create_app`` serves a
``server.Server``.
"""

import asyncio
import contextlib
import hmac
import os
import time
import urllib.parse

import prometheus_client as prom
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.responses import JSONResponse
from starlette.responses import Response
from starlette.routing import Route

from experiments.serving import bodies
from experiments.serving import images as images_lib
from experiments.serving.bodies import BadRequest
from experiments.serving.server import Server

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
PAGES = {"/": "index.html", "/monitor": "monitor.html"}
COOKIE = "perceptrax_token"
INLINE_JSON_BYTES = 64 * 1024  # a larger body is parsed in a worker thread
CLIENT_GONE = 499


def _error(status: int, message: str, headers=None, close: bool = False) -> JSONResponse:
  headers = {**(headers or {}), **({"Connection": "close"} if close else {})}
  return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _body(request: Request, settings) -> bytes:
  """The request body, at most ``max_body_bytes``; BadRequest 413 beyond, 408 when it has not
  arrived within ``body_timeout`` seconds.

  A body over the limit is read to its end and dropped, up to ``max_drain_bytes``
  more, before the 413 is sent: a client that sends its whole body before it
  reads (Python's urllib) would otherwise find the connection reset under it.
  A body too large even for that is answered at once and its connection closed.
  A body that came whole with its headers (most) is taken as it is.
  """
  limit = settings.max_body_bytes
  declared = request.headers.get("content-length")
  if declared is not None and declared.isdigit() and int(declared) > limit + \
      settings.max_drain_bytes:
    raise BadRequest(413, f"the body is over the limit of {limit} bytes", close=True)
  message = await request.receive()
  if message["type"] == "http.disconnect":
    raise ClientDisconnect()
  if not message.get("more_body") and len(message["body"]) <= limit:
    return message["body"]
  chunks, size, drained = [], 0, False
  try:
    async with asyncio.timeout(settings.body_timeout):
      while True:
        size += len(message["body"])
        if size <= limit:
          chunks.append(message["body"])
        elif size > limit + settings.max_drain_bytes:
          drained = True
          break
        if not message.get("more_body"):
          break
        message = await request.receive()
        if message["type"] == "http.disconnect":
          raise ClientDisconnect()
  except TimeoutError:
    raise BadRequest(408, f"the body did not arrive within {settings.body_timeout:g} s",
                     close=True) from None
  if size > limit:
    raise BadRequest(413, f"the body is over the limit of {limit} bytes", close=drained)
  return b"".join(chunks)


def _server(request: Request) -> Server:
  return request.app.state.server


def _authorized(server: Server, request: Request) -> bool:
  """Whether ``request`` carries the token (bearer header or the pages' cookie, which the login
  page percent-encodes), if one is set."""
  token = server.settings.token
  if token is None:
    return True
  header = request.headers.get("authorization", "")
  given = (header[7:] if header.lower().startswith("bearer ")
           else urllib.parse.unquote(request.cookies.get(COOKIE, "")))
  return hmac.compare_digest(given.encode(), token.encode())


def _guarded(name: str, handler, public: bool = False, page: bool = False):
  """``handler`` with the token check, JSON errors, and its requests counted and timed."""

  async def endpoint(request: Request) -> Response:
    server, start = _server(request), time.perf_counter()
    try:
      if not public and not _authorized(server, request):
        response = (FileResponse(os.path.join(STATIC, "login.html"), status_code=401) if page
                    else _error(401, "a bearer token is required (Authorization: Bearer <token>)",
                                {"WWW-Authenticate": "Bearer"}))
      else:
        response = await handler(server, request)
    except BadRequest as e:
      response = _error(e.status, str(e), e.headers, e.close)
    except ClientDisconnect:  # nobody to answer
      response = Response(status_code=CLIENT_GONE)
    server.metrics.count_request(name, response.status_code, time.perf_counter() - start)
    return response

  return endpoint


def _check_name(server: Server, request: Request) -> None:
  if request.path_params["name"] != server.settings.model_name:
    raise BadRequest(404, f"no model {request.path_params['name']!r}; this server serves "
                     f"{server.settings.model_name!r}")


def _decode_image(server: Server, body: bytes):
  try:
    pixels, _ = images_lib.decode(body, server.artifact.input_shape, "auto",
                                  server.settings.frame_digits)
  except images_lib.ImageError as e:
    raise BadRequest(400, f"the image cannot be classified: {e}") from None
  return pixels[None]


async def _predict(server: Server, request: Request) -> Response:
  """?preview=true: a drawing still in progress, answered but not counted (Server.predict)."""
  _check_name(server, request)
  content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
  if not (content_type.startswith("image/") or content_type in (
      "application/json", "application/octet-stream", "")):
    raise BadRequest(415, f"unsupported Content-Type {content_type!r}: send application/json, "
                     "application/octet-stream (uint8 pixels) or an image (image/png, image/jpeg)")
  body = await _body(request, server.settings)
  if content_type.startswith("image/"):
    images = await server.offload(_decode_image, server, body)
  elif content_type == "application/octet-stream":
    images = server.pixels(body)
  elif len(body) <= INLINE_JSON_BYTES:
    images = server.instances(body)
  else:
    images = await server.offload(server.instances, body)
  preview = request.query_params.get("preview", "false").lower() == "true"
  return JSONResponse({"predictions": await server.predict(images, preview)})


async def _models(server: Server, request: Request) -> Response:
  del request
  return JSONResponse({"models": [server.settings.model_name]})


async def _model_status(server: Server, request: Request) -> Response:
  if request.path_params["name"].endswith(":predict"):  # the predict route, with another method
    raise BadRequest(405, "use POST to predict", headers={"Allow": "POST"})
  _check_name(server, request)
  manifest = {k: v for k, v in server.artifact.manifest.items() if k != "files"}
  return JSONResponse({"name": server.settings.model_name, "model_id": server.model_id,
                       "max_batch": server.settings.max_batch, "manifest": manifest})


async def _feedback(server: Server, request: Request) -> Response:
  body = await _body(request, server.settings)
  return JSONResponse({"recorded": server.record_feedback(bodies.json_body(body))})


async def _monitor(server: Server, request: Request) -> Response:
  del request
  return JSONResponse(server.report())


async def _healthz(server: Server, request: Request) -> Response:
  del server, request
  return JSONResponse({"status": "alive"})


async def _readyz(server: Server, request: Request) -> Response:
  del request
  return (JSONResponse({"status": "ready", "model": server.settings.model_name}) if server.ready
          else _error(503, "not ready"))


async def _metrics(server: Server, request: Request) -> Response:
  del request
  server.update_gauges()
  return Response(prom.generate_latest(server.metrics.registry),
                  media_type=prom.CONTENT_TYPE_LATEST)


def _static(name: str):
  async def serve(server: Server, request: Request) -> Response:
    del server, request
    return FileResponse(os.path.join(STATIC, name), headers={"Cache-Control": "no-store"})
  return serve


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette):
  """Starts the batcher and the history sampler; on shutdown, after the last answer, stops them."""
  server = app.state.server
  await server.batcher.start()
  sampler = asyncio.get_running_loop().create_task(server.sample_history())
  server.ready = True
  yield
  server.ready = False
  sampler.cancel()
  await server.batcher.stop()
  server.close()


ROUTES = [
    Route("/v1/models/{name}:predict", _guarded("predict", _predict), methods=["POST"]),
    Route("/v1/models", _guarded("model", _models), methods=["GET"]),
    Route("/v1/models/{name}", _guarded("model", _model_status), methods=["GET"]),
    Route("/v1/feedback", _guarded("feedback", _feedback), methods=["POST"]),
    Route("/v1/monitor", _guarded("monitor", _monitor), methods=["GET"]),
    Route("/healthz", _guarded("healthz", _healthz, public=True), methods=["GET"]),
    Route("/readyz", _guarded("readyz", _readyz), methods=["GET"]),
    Route("/metrics", _guarded("metrics", _metrics), methods=["GET"]),
    *[Route(path, _guarded("page", _static(name), page=True), methods=["GET"])
      for path, name in PAGES.items()],
    *[Route(f"/static/{name}", _guarded("static", _static(name)), methods=["GET"])
      for name in ("draw.js", "monitor.js")],
    # the login page's own stylesheet: public, or the login page shows unstyled
    Route("/static/style.css", _guarded("static", _static("style.css"), public=True),
          methods=["GET"]),
]


def create_app(server: Server) -> Starlette:
  """The ASGI app of ``server``."""
  app = Starlette(routes=ROUTES, lifespan=_lifespan)
  app.state.server = server
  return app
