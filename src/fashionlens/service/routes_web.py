"""The web page: `/` and its files under `/ui/`, shipped in the package (`service/web/`), nothing from a CDN.

Plain HTML, one stylesheet and a few ES modules, so there is no build step and the page can be changed in place.
A strict Content-Security-Policy keeps anything but the page's own files from running, and every file is
revalidated by its ETag, so a new release is never shadowed by a stale cached script.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

WEB = Path(__file__).with_name("web")
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


class PageFiles(StaticFiles):
    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers.update(HEADERS)
        return response


@router.api_route("/", methods=["GET", "HEAD"])
def page() -> FileResponse:
    return FileResponse(WEB / "index.html", headers=HEADERS)


def page_files() -> PageFiles:
    return PageFiles(directory=WEB)
