"""The labelling web app: Starlette routes over :class:`~highlights.tools.label.session.Labeller`.

``highlights label OUT --manifest M --labels DIR`` runs :func:`serve`. The page
(``templates/index.html``, ``static/label.js``, ``static/label.css``: plain HTML and JavaScript,
no build step, nothing fetched from elsewhere) talks JSON to ``/api/...``.

Access: bound to 127.0.0.1 by default, and then only requests whose ``Host`` is a loopback
name are answered (a web page elsewhere cannot reach the server through DNS rebinding). Bound to
another address it needs a token (:func:`serve` makes one when none is given): open
``/?token=...`` once, the page keeps it in an HttpOnly, SameSite=Strict cookie; scripts may send
``Authorization: Bearer ...``. Every POST must be ``application/json`` (a cross-site form
cannot send that without the browser asking first). Responses are ``no-store``: face images do
not go into the browser's disk cache. The access log is off (the token could be in a URL); each
response carries ``Server-Timing`` with the time the server spent on it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from highlights.media.container import RecordingError
from highlights.tools.label.lessons import LessonError
from highlights.tools.label.session import Labeller, LabelRequestError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "highlights_label_token"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Guard:
    """Token check, JSON-only POSTs, no-store and Server-Timing, as one small ASGI layer."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    def _authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        offered = request.cookies.get(COOKIE) or ""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            offered = header[7:].strip()
        return hmac.compare_digest(offered.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope)
        if self.token and request.url.path == "/" and "token" in request.query_params:
            given = request.query_params["token"]
            if hmac.compare_digest(given.encode(), self.token.encode()):
                response = RedirectResponse("/", status_code=303)  # drop the token from the address bar
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
                await response(scope, receive, send)
                return
        if not self._authorised(request):
            await JSONResponse({"error": "open the address with ?token=... that `highlights label` printed"},
                               status_code=401)(scope, receive, send)  # fmt: skip
            return
        if request.method == "POST" and request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            await JSONResponse({"error": "POST bodies must be application/json"}, status_code=415)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                elapsed = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", f"app;dur={elapsed:.1f}".encode()))
                headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


SAVE_AGAIN = "nothing of this batch was lost: fix the folder and save again"


def _error(error: Exception, after_write_error: str = SAVE_AGAIN) -> JSONResponse:
    if isinstance(error, LabelRequestError):
        return JSONResponse({"error": str(error)}, status_code=400)
    if isinstance(error, LessonError):
        return JSONResponse({"error": str(error)}, status_code=404)
    if isinstance(error, RecordingError):
        return JSONResponse({"error": f"cannot read the recording: {error}"}, status_code=500)
    if isinstance(error, OSError):  # the labels folder: permissions, a full disk
        name = Path(str(error.filename)).name if error.filename is not None else "the labels folder"
        message = f"the labels folder cannot be written ({error.strerror or type(error).__name__}: {name}); {after_write_error}"
        log.warning("%s", message)  # the file's name only: the folder's path stays out of logs
        return JSONResponse({"error": message}, status_code=507)
    raise error


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise LabelRequestError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise LabelRequestError("the request body must be a JSON object")
    return body


def _float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LabelRequestError(f"{name} must be a number of seconds, not {value!r}") from None


def create_app(labeller: Labeller, token: str | None = None, allowed_hosts: list[str] | None = None) -> Starlette:
    """The ASGI app over ``labeller``. ``allowed_hosts``: Host header values accepted (default:
    any; :func:`serve` passes the loopback names when bound to loopback)."""
    index_html = (HERE / "templates" / "index.html").read_text(encoding="utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(index_html)

    def jpeg(data: bytes) -> Response:
        return Response(data, media_type="image/jpeg")

    # Handlers that decode video or write files are plain functions: Starlette runs them in
    # its thread pool, so the event loop keeps answering (thumbnails load in parallel).
    def lessons(request: Request) -> Response:
        labeller.reload()
        return JSONResponse({"lessons": labeller.lessons(), "by": labeller.by, "state": labeller.state(),
                             "batch_size": labeller.batch_size})  # fmt: skip

    def lesson(request: Request) -> Response:
        try:
            query = request.query_params
            start = _float(query["start"], "start") if "start" in query else None
            end = _float(query["end"], "end") if "end" in query else None
            return JSONResponse(labeller.lesson_view(request.path_params["lesson_id"], start, end))
        except (LabelRequestError, LessonError) as error:
            return _error(error)

    def counts(request: Request) -> Response:
        try:
            query = request.query_params
            return JSONResponse(labeller.range_counts(request.path_params["lesson_id"],
                                                      _float(query.get("start"), "start"), _float(query.get("end"), "end")))  # fmt: skip
        except (LabelRequestError, LessonError) as error:
            return _error(error)

    def thumbnail(request: Request) -> Response:
        try:
            return jpeg(labeller.thumbnail(request.path_params["lesson_id"], request.path_params["frame"]))
        except (LabelRequestError, LessonError, RecordingError) as error:
            return _error(error)

    def face_image(request: Request) -> Response:
        try:
            return jpeg(labeller.face_image(request.path_params["batch_id"], request.path_params["index"]))
        except LabelRequestError as error:
            return JSONResponse({"error": str(error)}, status_code=404)

    async def new_batch(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            body = await _json(request)
            return JSONResponse(await run_in_threadpool(
                labeller.new_batch, str(body.get("lesson_id", "")), _float(body.get("start"), "start"),
                _float(body.get("end"), "end"), str(body.get("task", "age")), str(body.get("mode", "model")),
                bool(body.get("relabel", False)),
            ))  # fmt: skip
        except (LabelRequestError, LessonError, RecordingError, OSError) as error:
            return _error(error)

    async def save_batch(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            body = await _json(request)
            labels = body.get("labels")
            if not isinstance(labels, list):
                raise LabelRequestError("labels must be a list")
            return JSONResponse(await run_in_threadpool(labeller.save_batch, request.path_params["batch_id"], labels))
        except (LabelRequestError, LessonError, OSError) as error:
            return _error(error)

    async def release_batch(request: Request) -> Response:
        labeller.release_batch(request.path_params["batch_id"])
        return JSONResponse({"released": True})

    async def frame_labels(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            body = await _json(request)
            return JSONResponse(await run_in_threadpool(
                labeller.label_frames, str(body.get("lesson_id", "")), _float(body.get("start"), "start"),
                _float(body.get("end"), "end"), body.get("label"),
            ))  # fmt: skip
        except (LabelRequestError, LessonError, RecordingError) as error:
            return _error(error)
        except OSError as error:
            return _error(error, "no frame was labelled: fix the folder and try again")

    async def state(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            body = await _json(request)
            await run_in_threadpool(labeller.save_state, body)
        except LabelRequestError as error:
            return _error(error)
        except OSError as error:
            return _error(error, "the page's place was not saved (labels are saved apart)")
        return JSONResponse({"saved": True})

    routes = [
        Route("/", index),
        Route("/api/lessons", lessons),
        Route("/api/lessons/{lesson_id}", lesson),
        Route("/api/lessons/{lesson_id}/counts", counts),
        Route("/api/lessons/{lesson_id}/frames/{frame:int}.jpg", thumbnail),
        Route("/api/batch", new_batch, methods=["POST"]),
        Route("/api/batch/{batch_id}/{index:int}.jpg", face_image),
        Route("/api/batch/{batch_id}/save", save_batch, methods=["POST"]),
        Route("/api/batch/{batch_id}/release", release_batch, methods=["POST"]),
        Route("/api/frame-labels", frame_labels, methods=["POST"]),
        Route("/api/state", state, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(_Guard, token=token)]
    if allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    return Starlette(routes=routes, middleware=middleware)


def serve(labeller: Labeller, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          on_ready: Any = None) -> None:
    """Run the app with uvicorn until interrupted. Bound to a non-loopback address without a
    token, a random one is made (printed by the CLI through ``on_ready(url)``)."""
    import uvicorn

    loopback = is_loopback(host)
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    allowed = LOOPBACK_HOSTS if loopback else None
    app = create_app(labeller, token=token, allowed_hosts=allowed)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/" + (f"?token={token}" if token else "")
    if on_ready is not None:
        on_ready(url)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


__all__ = ["create_app", "is_loopback", "serve"]
