"""Learned mark profiles over HTTP: POST/GET/DELETE /v1/marks, and the store behind them.

A profile is learned once from several photos (``RemovalService.learn_mark``, on the job queue
like any model work, so a busy service answers 503) and kept under ``<data_dir>/marks/<id>/``
as the profile's own JSON + 16-bit PNG, so it survives a restart. ``POST /v1/remove`` with
``mark=<id>`` then removes exactly that mark. Ids are 128 random bits in URL-safe base64: not
guessable, and checked against that shape before they touch a path.
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from app.admission import admit_learning
from app.deps import ContextDep
from app.errors import ERROR_RESPONSES, MARK_NOT_FOUND, ErrorResponse, MarkNotFoundError, TooManyMarksError
from app.settings import Settings
from pipeline import io
from pipeline.cancel import checkpoint
from pipeline.errors import InvalidParameterError, NotEnoughPhotosError
from pipeline.marks import MarkProfile
from pipeline.marks.learn import MIN_PHOTOS
from pipeline.service import RemovalService

_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
PROFILE_FILE = "mark.json"


class MarkStore:
    """Profiles on disk, one folder per id; writes land whole (written aside, then renamed)."""

    def __init__(self, root: Path, max_marks: int) -> None:
        self.root = Path(root)
        self.max_marks = max_marks
        self._lock = threading.Lock()

    def _folder(self, mark_id: str) -> Path:
        if not _ID.fullmatch(mark_id):
            raise MarkNotFoundError(f"no mark profile {mark_id[:40]!r}")
        folder = self.root / mark_id
        if not (folder / PROFILE_FILE).is_file():
            raise MarkNotFoundError(f"no mark profile {mark_id!r} (never learned, or deleted)")
        return folder

    def ids(self) -> list[str]:
        """Stored ids (folders that hold a complete profile)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if _ID.fullmatch(p.name) and (p / PROFILE_FILE).is_file()
        )

    def add(self, profile: MarkProfile) -> str:
        """Store ``profile`` under a new id; ``TooManyMarksError`` when the store is full."""
        with self._lock:
            if len(self.ids()) >= self.max_marks:
                raise TooManyMarksError(
                    f"{self.max_marks} mark profiles are stored already: delete one (DELETE /v1/marks/{{id}})"
                )
            mark_id = secrets.token_urlsafe(16)
            self.root.mkdir(parents=True, exist_ok=True)
            staging = self.root / f".new-{mark_id}"
            staging.mkdir()
            try:
                profile.save(staging / PROFILE_FILE)
                staging.rename(self.root / mark_id)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return mark_id

    def load(self, mark_id: str) -> MarkProfile:
        """The stored profile (``MarkNotFoundError`` for an unknown or malformed id)."""
        return MarkProfile.load(self._folder(mark_id) / PROFILE_FILE)

    def image_path(self, mark_id: str) -> Path:
        """The profile's RGBA PNG (W as colour, α as alpha)."""
        return (self._folder(mark_id) / PROFILE_FILE).with_suffix(".png")

    def delete(self, mark_id: str) -> None:
        """Remove the profile: moved aside first, so a concurrent read sees it whole or not at all."""
        folder = self._folder(mark_id)
        trash = self.root / f".del-{mark_id}-{time.monotonic_ns()}"
        folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def get_store(request: Request) -> MarkStore:
    """The app's mark store (``create_app`` makes it from ``Settings.data_dir``)."""
    store: MarkStore = request.app.state.marks
    return store


def describe(mark_id: str, profile: MarkProfile) -> dict[str, Any]:
    """What the API shows of a profile: its metadata and where its image is."""
    return {"id": mark_id, **profile.metadata(), "image_url": f"/v1/marks/{mark_id}/image"}


def _learn_job(
    service: RemovalService, settings: Settings, store: MarkStore, uploads: list[UploadFile]
) -> str:
    """Decode every photo (admitted by their headers), learn, store; returns the id."""
    photos = []
    for upload in uploads:
        upload.file.seek(0)
        photos.append(io.decode(upload.file.read(), max_pixels=settings.max_pixels).rgb)
        checkpoint()
    return store.add(service.learn_mark(photos))


router = APIRouter(prefix="/v1/marks", tags=["marks"])
_LEARN_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "The learned profile: its id, metadata and image URL (also in `Location`)."},
    **ERROR_RESPONSES,
    409: {"model": ErrorResponse, "description": "The mark store is full: delete a profile first."},
}
_ID_RESPONSES: dict[int | str, dict[str, Any]] = {
    **MARK_NOT_FOUND,
    **{k: ERROR_RESPONSES[k] for k in (401, 500)},
}


@router.post("", status_code=201, responses=_LEARN_RESPONSES, summary="Learn the mark several photos share")
async def learn(
    ctx: ContextDep,
    images: Annotated[
        list[UploadFile],
        File(
            description="Three or more photos that carry the same mark (repeat the field).",
            json_schema_extra={"minItems": MIN_PHOTOS},  # fewer: our 400 not_enough_photos, not a 422
        ),
    ],
) -> JSONResponse:
    """Estimate the shared mark's opacity and colour and store it; answers its id and metadata.

    ``missing`` lists (by position) photos that turned out not to carry the mark: they did not
    shape the estimate and ``POST /v1/remove`` with ``mark=<id>`` leaves such photos untouched.
    """
    settings = ctx.settings
    if len(images) < MIN_PHOTOS:
        raise NotEnoughPhotosError(f"learning a mark needs at least {MIN_PHOTOS} photos, got {len(images)}")
    if len(images) > settings.max_mark_images:
        raise InvalidParameterError(
            f"at most {settings.max_mark_images} photos per request, got {len(images)}"
        )
    for upload in images:
        if upload.size == 0:
            raise InvalidParameterError(f"photo {upload.filename or ''!r} is empty")
    store = get_store(ctx.request)
    cost = await admit_learning(settings, [upload.file for upload in images])
    work = lambda: _learn_job(ctx.service, settings, store, images)  # noqa: E731
    mark_id, _ = await ctx.jobs.run(work, timeout=ctx.remaining_budget(), cost=cost)
    body = describe(mark_id, store.load(mark_id))
    return JSONResponse(body, status_code=201, headers={"Location": f"/v1/marks/{mark_id}"})


@router.get("/{mark_id}", responses=_ID_RESPONSES, summary="A mark profile")
async def show(request: Request, mark_id: str) -> dict[str, Any]:
    """The profile's metadata: layout, anchor, size, quality, missing photos, image URL."""
    return describe(mark_id, get_store(request).load(mark_id))


@router.get(
    "/{mark_id}/image",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, **_ID_RESPONSES},
    summary="The estimated mark as an RGBA PNG",
)
async def image(request: Request, mark_id: str) -> Response:
    """16-bit RGBA PNG: the mark's colour W, its opacity α as the alpha channel."""
    path = get_store(request).image_path(mark_id)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.delete("/{mark_id}", status_code=204, responses=_ID_RESPONSES, summary="Forget a mark profile")
async def delete(request: Request, mark_id: str) -> Response:
    """Delete the profile; later requests naming it get 404."""
    get_store(request).delete(mark_id)
    return Response(status_code=204)


__all__ = ["MarkStore", "describe", "get_store", "router"]
