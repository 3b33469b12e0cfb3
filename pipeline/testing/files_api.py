"""The test server's Files API (Moonshot's file-extract service): upload, read the extracted text, delete.

A PDF without a text layer answers with the gateway's ``ocr_text``, standing in for the service's OCR.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import time
import uuid
from pathlib import PurePath

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipeline.testing import moonshot_errors as E
from pipeline.testing.endpoints import authenticate, error_response, record_request, response_headers
from pipeline.testing.gateway import Gateway


def _parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field: (filename, bytes)} of a multipart/form-data body (stdlib parser; no extra dependency)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not msg.is_multipart():
        return fields
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def _extract_text(filename: str, data: bytes, ocr_text: str | None = None) -> str:
    """Text of an uploaded file (PDF via pypdf, text files decoded); ValueError when impossible.

    A PDF without a text layer yields ``ocr_text``, standing in for the service's OCR.
    """
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".pdf":
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                reader.decrypt("")
            text = "\n".join(page.extract_text() or "" for page in reader.pages)
            return text if text.strip() or ocr_text is None else ocr_text
        except (PyPdfError, ValueError, KeyError, OSError) as exc:
            raise ValueError(f"cannot read PDF: {type(exc).__name__}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"unsupported file type {suffix or '(none)'}") from exc


async def upload_file(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started, t = time.monotonic(), gw.now()
    _key, answer = authenticate(gw, request)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if answer is None:
        fields = _parse_multipart(request.headers.get("content-type", ""), await request.body())
        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"file-extract":
            answer = E.invalid_request("a file and purpose=file-extract are required")
    if answer is None:
        filename = fields["file"][0] or "upload"
        try:
            text = _extract_text(filename, fields["file"][1], gw.ocr_text)
        except ValueError as exc:
            answer = E.extract_failed(str(exc))
    if answer is not None:
        record_request(gw, "files", t, answer[0], answer[1])
        return error_response(gw, started, answer)
    file_id = "cn" + uuid.uuid4().hex[:18]
    gw.files[file_id] = (filename, text.encode())
    record_request(gw, "files", t, 200)
    obj = {
        "id": file_id,
        "object": "file",
        "bytes": len(fields["file"][1]),
        "created_at": int(gw.now()),
        "filename": filename,
        "purpose": "file-extract",
        "status": "ok",
        "status_details": "",
    }
    return JSONResponse(obj, headers=response_headers(gw, started))


async def file_content(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started, t = time.monotonic(), gw.now()
    _key, answer = authenticate(gw, request)
    file_id = request.path_params["file_id"]
    if answer is None and file_id not in gw.files:
        answer = E.file_not_found(file_id)
    if answer is not None:
        record_request(gw, "file_content", t, answer[0], answer[1])
        return error_response(gw, started, answer)
    filename, text = gw.files[file_id]
    kind = "application/pdf" if filename.lower().endswith(".pdf") else "text/plain"
    record_request(gw, "file_content", t, 200)
    body = {"content": text.decode(), "file_type": kind, "filename": filename, "title": "", "type": "file"}
    return JSONResponse(body, headers=response_headers(gw, started))


async def delete_file(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started, t = time.monotonic(), gw.now()
    _key, answer = authenticate(gw, request)
    file_id = request.path_params["file_id"]
    if answer is None and gw.files.pop(file_id, None) is None:
        answer = E.file_not_found(file_id)
    if answer is not None:
        record_request(gw, "files_delete", t, answer[0], answer[1])
        return error_response(gw, started, answer)
    record_request(gw, "files_delete", t, 200)
    return JSONResponse({"id": file_id, "object": "file", "deleted": True}, headers=response_headers(gw, started))
