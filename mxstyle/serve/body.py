"""Request bodies read under a size limit: the declared Content-Length is checked before reading,
and the bytes are counted as they arrive, so a body over the limit is refused with 413 without
ever holding more than the limit. Multipart bodies are parsed as they stream in."""
from dataclasses import dataclass, field
from typing import Dict, Optional

from .params import HTTPError

__all__ = ["Upload", "read_body", "read_upload", "too_large"]

#: The largest text field of a multipart form (model names, numbers).
MAX_FIELD_BYTES = 4096

#: Field names taken for the image when a part has no file name.
IMAGE_FIELDS = ("image", "file", "photo")


@dataclass
class Upload:
    data: bytes
    filename: Optional[str] = None
    fields: Dict[str, str] = field(default_factory=dict)


def too_large(limit):
    return HTTPError(413, f"the upload is over the limit of {limit / 2 ** 20:g} MB "
                          f"({limit:,} bytes); send a smaller file")


def declared_length(request, limit):
    """The Content-Length (None when absent); 413 at once when it is over ``limit``."""
    text = request.headers.get("content-length")
    if text is None:
        return None
    try:
        length = int(text)
    except ValueError:
        raise HTTPError(400, f"bad Content-Length header {text!r}") from None
    if length < 0:
        raise HTTPError(400, f"bad Content-Length header {text!r}")
    if length > limit:
        raise too_large(limit)
    return length


async def _chunks(request, limit):
    """The body's chunks, counted; 413 as soon as the count passes ``limit``. A client that
    disconnects raises starlette's ``ClientDisconnect``."""
    declared_length(request, limit)
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit)
        if chunk:
            yield chunk


async def read_body(request, limit):
    """The whole body as bytes, at most ``limit`` of them."""
    parts = bytearray()
    async for chunk in _chunks(request, limit):
        parts += chunk
    return bytes(parts)


async def read_upload(request, limit):
    """The image of a ``POST /v1/stylize``: a multipart form's file part (and its text fields),
    or else the raw body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return Upload(await read_body(request, limit))
    return await _read_multipart(request, limit, content_type)


async def _read_multipart(request, limit, content_type):
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise HTTPError(400, "multipart body without a boundary in its Content-Type")
    form = _FormCollector()
    parser = MultipartParser(boundary, form.callbacks())
    try:
        async for chunk in _chunks(request, limit):
            parser.write(chunk)
            form.raise_pending()
        parser.finalize()
    except FormParserError as exc:
        raise HTTPError(400, f"malformed multipart body ({exc})") from None
    form.raise_pending()
    if form.image is None:
        raise HTTPError(400, "the form has no image: send the photo as a file field named 'image'")
    return Upload(bytes(form.image), form.filename, form.fields)


class _FormCollector:
    """Callbacks of python-multipart's streaming parser: text fields and one file part."""

    def __init__(self):
        self.fields, self.image, self.filename = {}, None, None
        self._headers, self._name, self._value = {}, b"", b""
        self._part = None  # ("field", name, bytearray) or ("file", name, bytearray)
        self._error = None

    def callbacks(self):
        return {"on_part_begin": self._begin, "on_part_data": self._data, "on_part_end": self._end,
                "on_header_field": self._header_field, "on_header_value": self._header_value,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done}

    def raise_pending(self):
        if self._error is not None:
            raise self._error

    def _fail(self, status, message):
        if self._error is None:
            self._error = HTTPError(status, message)

    def _begin(self):
        self._headers, self._part = {}, None

    def _header_field(self, data, start, end):
        self._name += data[start:end]

    def _header_value(self, data, start, end):
        self._value += data[start:end]

    def _header_end(self):
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def _headers_done(self):
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None or name in IMAGE_FIELDS:
            if self.image is not None:
                self._fail(400, "the form holds more than one file; send one image per request")
            self.image = bytearray()
            self.filename = filename.decode("utf-8", "replace") if filename else None
            self._part = ("file", name, self.image)
        else:
            self._part = ("field", name, bytearray())

    def _data(self, data, start, end):
        if self._part is None:
            return
        kind, name, buffer = self._part
        if kind == "field" and len(buffer) + end - start > MAX_FIELD_BYTES:
            self._fail(400, f"form field {name!r} is over {MAX_FIELD_BYTES} bytes")
            return
        buffer += data[start:end]

    def _end(self):
        if self._part is not None and self._part[0] == "field":
            self.fields[self._part[1]] = self._part[2].decode("utf-8", "replace")
        self._part = None
