"""Google's discovery service for the APIs the sandbox models, pointed at the sandbox.

The documents are the ones google-api-python-client bundles (read from the installed package,
never imported from it), with ``rootUrl``/``baseUrl``/``mtlsRootUrl`` rewritten to the origin the
client asked: a client that builds its service from discovery at run time (GAM does) then calls
the sandbox, and one that only rewrote host names keeps calling the sandbox.

Two URL forms, as Google has them:

- ``/discovery/v1/apis/{api}/{version}/rest`` (the API is in the path);
- ``/$discovery/rest?version=...`` (Google's per-host form: the API is the host's). The API is the
  Host header's first label when it names a modelled API (``reseller.googleapis.com``,
  ``reseller.localhost:8765``), else the one modelled API that has that version
  (``directory_v1`` is ``admin``, ``v2`` is ``oauth2``); ``v1`` alone on a bare origin is
  ambiguous and answers 400 saying how to name the API.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, request

from bss.sandbox import partial
from bss.sandbox.errors import ApiError

bp = Blueprint("discovery", __name__)

#: (discovery name, version) of each modelled API, by the prefix of the sandbox's method ids.
MODELLED = {
    "reseller": ("reseller", "v1"),
    "directory": ("admin", "directory_v1"),
    "licensing": ("licensing", "v1"),
    "gmail": ("gmail", "v1"),
    "oauth2": ("oauth2", "v2"),
}
_DOCUMENTS = frozenset(MODELLED.values())
_NAMES = frozenset(name for name, _ in _DOCUMENTS)
#: What Google's discovery service answers for an API or version it does not know (the v1
#: service's body, as google/apis-client-generator#11 quotes it).
_NOT_FOUND = "Not Found"


def _documents_dir() -> Path | None:
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "discovery_cache" / "documents"


@functools.cache
def document(name: str, version: str) -> dict | None:
    """The bundled discovery document of a modelled API (Google's URLs in it), or None."""
    if (name, version) not in _DOCUMENTS:
        return None
    folder = _documents_dir()
    path = folder / f"{name}.{version}.json" if folder else None
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def for_method(method_id: str) -> dict | None:
    """The discovery document of the API a sandbox method id (``directory.users.list``) is of."""
    api = MODELLED.get(method_id.split(".", 1)[0])
    return document(*api) if api else None


def _pointed_here(doc: dict) -> dict:
    """A shallow copy of ``doc`` whose URLs are the origin of this request."""
    root = request.host_url
    here = dict(doc)
    here["rootUrl"] = root
    here["baseUrl"] = root + doc.get("servicePath", "")
    if "mtlsRootUrl" in doc:
        here["mtlsRootUrl"] = root
    return here


def _answer(name: str, version: str) -> Response:
    doc = document(name, version)
    if doc is None:
        raise ApiError(404, "notFound", _NOT_FOUND)
    return partial.rendered(_pointed_here(doc))


@bp.get("/discovery/v1/apis/<name>/<version>/rest")
def by_path(name: str, version: str) -> Response:
    return _answer(name, version)


@bp.get("/$discovery/rest")
def by_host() -> Response:
    version = request.args.get("version", "")
    origin = urlsplit("//" + request.host)
    host = origin.hostname or ""
    label = host.split(".", 1)[0]
    if label in _NAMES:
        return _answer(label, version)
    if host.endswith(".googleapis.com"):
        # A Google API host the sandbox does not model.
        raise ApiError(404, "notFound", _NOT_FOUND)
    names = sorted(name for name, v in _DOCUMENTS if v == version)
    if len(names) == 1:
        return _answer(names[0], version)
    if not names:
        raise ApiError(404, "notFound", _NOT_FOUND)
    port = f":{origin.port}" if origin.port else ""
    raise ApiError(
        400,
        "badRequest",
        f"The sandbox cannot tell which API version {version!r} is of from the host "
        f"{request.host!r}: {', '.join(names)} all have it. Name the API by the host's first "
        f"label (http://{names[0]}.localhost{port}/$discovery/rest?version={version}) or in the "
        f"path (/discovery/v1/apis/{names[0]}/{version}/rest).",
    )


@bp.get("/discovery/v1/apis")
def directory_list() -> Response:
    """The directory of APIs (``discovery.apis.list``), listing the modelled ones."""
    root = request.host_url
    items = []
    for name, version in sorted(_DOCUMENTS):
        doc = document(name, version)
        if doc is None or request.args.get("name") not in (None, name):
            continue
        items.append(
            {
                "kind": "discovery#directoryItem",
                "id": doc["id"],
                "name": name,
                "version": version,
                "title": doc.get("title"),
                "description": doc.get("description"),
                "discoveryRestUrl": f"{root}discovery/v1/apis/{name}/{version}/rest",
                "icons": doc.get("icons"),
                "documentationLink": doc.get("documentationLink"),
                "preferred": True,
            }
        )
    body = {"kind": "discovery#directoryList", "discoveryVersion": "v1", "items": items}
    return partial.rendered(body)
