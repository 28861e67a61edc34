"""The web app (the ``serve`` extra: FastAPI, uvicorn, python-multipart): one page of our own
(no CDN, fonts or analytics: it works offline) over an HTTP API documented at ``/docs``.

- ``GET /models``: the models served, with kind, scale, directions and parameters;
- ``POST /translate``: one image in, its translation out (the bytes ``i2i convert`` writes);
- ``POST /jobs``: images, videos or zips of them; ``GET /jobs/{id}`` progress; ``GET
  /jobs/{id}/result`` the output (a zip for many); ``GET /jobs/{id}/files/{name}`` one output;
  ``DELETE /jobs/{id}`` cancels or removes.

Conversion options (model, direction, tile, runtime, seamless, mask and feather, temporal, ext)
are form fields checked as :class:`~i2i.convert.ConvertOptions` checks them (422 naming the field).
"""

from __future__ import annotations

import asyncio
import html
import json
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..convert import ConvertOptions
from .jobs import Job, JobQueue, QueueFull
from .models import ModelStore
from .uploads import UploadError, save

STATIC = Path(__file__).with_name("static")
MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".bmp": "image/bmp", ".tif": "image/tiff", ".webp": "image/webp",
         ".dcm": "application/dicom", ".zip": "application/zip"}


def create_app(models: list[str], *, device: str = "auto", max_upload_mb: int = 512, max_queued: int = 64,
               workdir: str | None = None) -> FastAPI:
    """The app serving ``models`` (loaded now; a file that cannot serve raises ``ValueError``)."""
    store = ModelStore(models, device=device)
    limit = max_upload_mb << 20

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202  (FastAPI's lifespan protocol)
        app.state.jobs = JobQueue(store, max_queued=max_queued, workdir=workdir)
        yield
        await asyncio.to_thread(app.state.jobs.stop)

    app = FastAPI(title="i2i", summary="image-to-image translation: try, compare and convert", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.store, app.state.limit = store, limit
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def upload_limit(request: Request, call_next):  # noqa: ANN001, ANN202
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is None:
                return JSONResponse({"detail": "send the upload with a Content-Length"}, status_code=411)
            if int(length) > limit + (1 << 20):
                return JSONResponse({"detail": f"the upload is {int(length):,} bytes, over the limit of {limit:,} "
                                               "(--max-upload-mb)"}, status_code=413)
        return await call_next(request)

    _routes(app)
    return app


def _int(form: dict[str, Any], key: str) -> int | None:
    """A whole-number form field (None when absent); 422 naming it otherwise."""
    if not form.get(key):
        return None
    try:
        return int(form[key])
    except ValueError:
        raise HTTPException(422, f"{key}={form[key]!r} must be a whole number") from None


def _options(form: dict[str, Any]) -> tuple[dict[str, Any], ConvertOptions]:
    """The job settings and the conversion options of a request's form fields (422 naming a wrong one)."""
    settings = {"model": form.get("model") or None, "direction": form.get("direction") or None,
                "tile": _int(form, "tile"), "runtime": form.get("runtime") or "torch",
                "seamless": form.get("seamless") if form.get("seamless") not in (None, "", "off") else None}
    try:
        options = ConvertOptions(ext=form.get("ext") or None, temporal=form.get("temporal") or "off",
                                 feather=_int(form, "feather") or 0, workers=0)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    return settings, options


async def _job(request: Request, files: list[UploadFile], mask: UploadFile | None, form: dict[str, Any]) -> Job:
    """A job filled with the uploads (sniffed, renamed safely), not queued yet."""
    settings, options = _options(form)
    store: ModelStore = request.app.state.store
    try:
        store.translator(settings["model"], settings["direction"], settings["tile"], settings["runtime"],
                         settings["seamless"])
    except (KeyError, ValueError, ImportError) as e:
        raise HTTPException(422, str(e).strip("'\"")) from None
    jobs: JobQueue = request.app.state.jobs
    job = jobs.new(settings, options)
    used: set[str] = set()
    try:
        for f in files:
            placed = await asyncio.to_thread(save, f.file, f.filename, job.inputs, used, request.app.state.limit)
            job.total += len(placed)
        if mask is not None and mask.filename:
            (job.folder / "mask").mkdir()
            placed = await asyncio.to_thread(save, mask.file, mask.filename, job.folder / "mask", set(),
                                             request.app.state.limit)
            job.options = replace(job.options, mask=str(placed[0]))
    except UploadError as e:
        jobs.remove(job.id)
        raise HTTPException(e.status, str(e)) from None
    if not job.total:
        jobs.remove(job.id)
        raise HTTPException(422, "no image or video in the upload")
    return job


def _submit(request: Request, job: Job) -> None:
    try:
        request.app.state.jobs.submit(job)
    except QueueFull as e:
        raise HTTPException(503, str(e), headers={"Retry-After": "5"}) from None


Field = Annotated[str | None, Form()]


def _routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/models", summary="the models served")
    def models(request: Request) -> list[dict[str, Any]]:
        return request.app.state.store.info()

    @app.post("/translate", summary="one image in, its translation out (the bytes i2i convert writes)",
              responses={200: {"content": {"image/png": {}}}})
    async def translate(request: Request, file: Annotated[UploadFile, File()], model: Field = None,
                        direction: Field = None, tile: Field = None, runtime: Field = None, seamless: Field = None,
                        ext: Field = None, feather: Field = None, mask: Annotated[UploadFile | None, File()] = None
                        ) -> Response:
        job = await _job(request, [file], mask, locals())
        _submit(request, job)
        try:
            await asyncio.wrap_future(job.future)
        except Exception as e:  # noqa: BLE001  (the conversion's own error, said to the caller)
            request.app.state.jobs.remove(job.id)
            raise HTTPException(422, str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        if job.state != "done":
            request.app.state.jobs.remove(job.id)
            raise HTTPException(422, job.error)
        out = job.out / job.outputs[0]
        data = out.read_bytes()
        request.app.state.jobs.remove(job.id)
        return Response(data, media_type=MEDIA.get(out.suffix.lower(), "application/octet-stream"),
                        headers={"Content-Disposition": f'attachment; filename="{out.name}"'})

    @app.post("/jobs", summary="images, videos or zips of them to convert; poll GET /jobs/{id}")
    async def submit(request: Request, files: Annotated[list[UploadFile], File()], model: Field = None,
                     direction: Field = None, tile: Field = None, runtime: Field = None, seamless: Field = None,
                     ext: Field = None, feather: Field = None, temporal: Field = None,
                     mask: Annotated[UploadFile | None, File()] = None) -> dict[str, Any]:
        job = await _job(request, files, mask, locals())
        _submit(request, job)
        return job.status()

    _job_routes(app)


def _find(request: Request, job_id: str) -> Job:
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} (finished jobs are kept for an hour)")
    return job


def _job_routes(app: FastAPI) -> None:
    @app.get("/jobs/{job_id}", summary="a job's state and progress")
    def status(request: Request, job_id: str) -> dict[str, Any]:
        return _find(request, job_id).status()

    @app.get("/jobs/{job_id}/result", summary="the output, or a zip of all outputs")
    def result(request: Request, job_id: str) -> FileResponse:
        job = _find(request, job_id)
        if job.state != "done":
            raise HTTPException(409, f"job {job_id} is {job.state}{': ' + job.error if job.error else ''}")
        path = job.result()
        return FileResponse(path, media_type=MEDIA.get(path.suffix.lower(), "application/octet-stream"),
                            filename=path.name)

    @app.get("/jobs/{job_id}/files/{name}", summary="one output of a job, by the name GET /jobs/{id} lists")
    def one(request: Request, job_id: str, name: str) -> FileResponse:
        job = _find(request, job_id)
        if name not in job.outputs:  # only names the job wrote: no request can reach another path
            raise HTTPException(404, f"job {job_id} has no output {name!r}")
        path = job.out / name
        return FileResponse(path, media_type=MEDIA.get(path.suffix.lower(), "application/octet-stream"))

    @app.delete("/jobs/{job_id}", summary="cancel a queued job or remove a finished one")
    def delete(request: Request, job_id: str) -> dict[str, str]:
        _find(request, job_id)
        request.app.state.jobs.remove(job_id)
        return {"id": job_id, "state": "removed"}

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(_docs_page(request.app.openapi()))


def _docs_page(spec: dict[str, Any]) -> str:
    """The OpenAPI description as one self-contained page (FastAPI's own loads scripts from a CDN)."""
    rows = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            params = [p["name"] for p in op.get("parameters", [])]
            body = op.get("requestBody", {}).get("content", {})
            for media in body.values():
                ref = media.get("schema", {}).get("$ref", "")
                schema = spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
                params += [f"{k} (form)" for k in schema.get("properties", {})]
            rows.append(f"<tr><td><code>{method.upper()} {html.escape(path)}</code></td><td>"
                        f"{html.escape(op.get('summary', ''))}</td><td>{html.escape(', '.join(params))}</td></tr>")
    return ("<!doctype html><meta charset=utf-8><title>i2i API</title><link rel=stylesheet href=/static/app.css>"
            "<main><h1>i2i HTTP API</h1><p>The machine-readable description: <a href=/openapi.json>/openapi.json"
            "</a>. Example: <code>curl -F file=@photo.jpg -o out.jpg http://127.0.0.1:8000/translate</code></p>"
            "<table><tr><th>endpoint</th><th>what</th><th>parameters</th></tr>" + "".join(rows) + "</table>"
            f"<pre>{html.escape(json.dumps(spec.get('info', {}), indent=2))}</pre></main>")
