"""Blobs in an S3-compatible object store: a `BlobBackend`, shared by every replica.

An object is named by the file's content: `<prefix><sha256 hex>` for a key `sha256-<hex>`
(the page gave the hash, so the name is known before the download); a file listed without
a sha256 (key `url-<hex>`) is `<prefix><key>`. Each is written once, only after its bytes
were verified: a single `PUT` with `If-None-Match: *` (a 412 means it is already there,
which is as good), or a multipart upload for big files. Some stores (Ceph RGW 16) ignore
the condition when a multipart upload completes, so a multipart write first asks whether
the object exists; an overwrite that slips through a race writes identical bytes. A failed
multipart upload is aborted, and uploads older than `ORPHAN_AGE_S` under the prefix are
swept when the backend opens (a replica killed mid-upload leaves one behind; an object
store never shows an unfinished upload as an object). Reads stream, whole or a range.

Besides the `BlobBackend` calls (`put` of a verified local file), `put_stream` stores
verified bytes as they are read from elsewhere (a download's stream), which a cluster
replica needs: the verified file on its disk belongs to its own store.

The client is aiobotocore: the whole S3 API (conditional PUT, multipart listing and abort,
bucket creation) with asyncio. Measured against a local RGW, it matched obstore on warm
GETs (~690 MB/s both) and beat it on PUT of 20 MB (167 against 120 MB/s) and on ranged GETs
(870 against 420 MB/s); obstore has no call for listing multipart uploads.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from proxy.cluster.settings import S3Settings
from proxy.store.layout import check_key

if TYPE_CHECKING:
    from proxy.store.backend import BlobBackend

log = logging.getLogger("variant_proxy.cluster")

# Files up to this size go in one PUT; bigger ones in parts of this size.
PART_BYTES = 16 * 1024 * 1024
READ_CHUNK_BYTES = 256 * 1024
# Unfinished multipart uploads older than this are someone's dead upload: aborted at start.
ORPHAN_AGE_S = 3600.0

_SHA256 = re.compile(r"[0-9a-f]{64}")

# What a failing store raises (connection trouble and S3 error answers).
S3_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, OSError)


class BlobStoreError(Exception):
    """The object store did not do what was asked; the message says what and why."""


# Everything a call to the store may raise when the store (not the caller) is at fault.
STORE_ERRORS: tuple[type[Exception], ...] = (*S3_ERRORS, BlobStoreError)


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class S3Blobs:
    """One bucket (under one prefix) of an S3-compatible store; `connect()` before use."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise BlobStoreError("the object store client is not open")
        return self._client

    def object_key(self, key: str) -> str:
        """The object name of a store key: `sha256-<hex>` -> `<prefix><hex>`, else
        `<prefix><key>`."""
        check_key(key)
        if key.startswith("sha256-") and _SHA256.fullmatch(key[7:]):
            return f"{self.settings.prefix}{key[7:]}"
        return f"{self.settings.prefix}{key}"

    # -- lifecycle -----------------------------------------------------------------------

    async def connect(self, *, sweep_orphans: bool = True) -> None:
        """Connect, create the bucket when it is missing, abort old unfinished uploads.

        A store that does not answer is logged, not fatal: the replica starts and serves
        what it can (`/health` says why); every call retries the store.
        """
        settings = self.settings
        credentials = settings.credentials()
        keys = {}
        if credentials is not None:
            keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
        config = AioConfig(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=64,
        )
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                config=config,
                **keys,
            )
        )
        try:
            await self.ensure_bucket()
            if sweep_orphans:
                await self.sweep_orphans(ORPHAN_AGE_S)
        except S3_ERRORS as exc:
            log.error("object store %s: %s", settings.endpoint_url or "default", exc)

    async def close(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def ensure_bucket(self) -> None:
        bucket = self.settings.bucket
        try:
            await self.client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        try:
            await self.client.create_bucket(Bucket=bucket)
            log.info("created bucket %s", bucket)
        except ClientError as exc:
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def problem(self) -> str | None:
        """None when the bucket answers, else the one-line reason (for `/health`)."""
        try:
            await self.client.head_bucket(Bucket=self.settings.bucket)
        except STORE_ERRORS as exc:
            return f"object store: {exc}"[:300]
        return None

    # -- the blob API ----------------------------------------------------------------------

    async def stat(self, key: str) -> int | None:
        """The stored object's size, or None when there is none."""
        try:
            head = await self.client.head_object(
                Bucket=self.settings.bucket, Key=self.object_key(key)
            )
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    async def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> tuple[int, AsyncIterator[bytes]]:
        """(bytes that follow, their chunks) of the object in [start, end) (end None: to
        its end). Raises `FileNotFoundError` when there is no such object."""
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = await self.client.get_object(
                Bucket=self.settings.bucket, Key=self.object_key(key), **extra
            )
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(key) from None
            raise
        return int(answer["ContentLength"]), _body_chunks(answer["Body"])

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes]) -> bool:
        """Store verified bytes under the key's name; False when the object was there."""
        if size <= PART_BYTES:
            body = b"".join([chunk async for chunk in chunks])
            if len(body) != size:
                raise BlobStoreError(f"{key}: got {len(body)} bytes, expected {size}")
            return await self._put_single(key, body)
        if await self.stat(key) is not None:
            return False
        await self._put_multipart(key, size, chunks)
        return True

    # -- the BlobBackend Protocol -----------------------------------------------------------

    async def prepare(self) -> None:
        if self._client is None:
            await self.connect()

    def check(self, key: str) -> None:
        self.object_key(key)

    async def put(self, key: str, verified: Path, size: int) -> S3Blob:
        try:
            await self.put_stream(key, size, _file_chunks(verified))
        finally:
            await asyncio.to_thread(verified.unlink, missing_ok=True)
        return S3Blob(self, key, size)

    async def open(self, key: str) -> S3Blob | None:
        size = await self.stat(key)
        return None if size is None else S3Blob(self, key, size)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            await self.client.delete_object(Bucket=self.settings.bucket, Key=self.object_key(key))

    async def list_keys(self) -> list[str]:
        """Every object key under the prefix (for tests and operators)."""
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        pages = paginator.paginate(Bucket=self.settings.bucket, Prefix=self.settings.prefix)
        async for page in pages:
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    async def unfinished_uploads(self) -> list[tuple[str, str, datetime]]:
        """(key, upload id, started) of every multipart upload not completed nor aborted."""
        answer = await self.client.list_multipart_uploads(
            Bucket=self.settings.bucket, Prefix=self.settings.prefix
        )
        return [(u["Key"], u["UploadId"], u["Initiated"]) for u in answer.get("Uploads", [])]

    async def sweep_orphans(self, older_than_s: float) -> int:
        """Abort unfinished uploads older than `older_than_s`; how many were aborted."""
        cutoff = time.time() - older_than_s
        aborted = 0
        for key, upload_id, started in await self.unfinished_uploads():
            if started.astimezone(UTC).timestamp() > cutoff:
                continue
            await self._abort(key, upload_id)
            aborted += 1
        if aborted:
            log.info("aborted %d unfinished multipart uploads", aborted)
        return aborted

    # -- internals -------------------------------------------------------------------------

    async def _put_single(self, key: str, body: bytes) -> bool:
        try:
            await self.client.put_object(
                Bucket=self.settings.bucket,
                Key=self.object_key(key),
                Body=body,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True

    async def _put_multipart(self, name: str, size: int, chunks: AsyncIterator[bytes]) -> None:
        bucket, key = self.settings.bucket, self.object_key(name)
        started = await self.client.create_multipart_upload(Bucket=bucket, Key=key)
        upload_id = started["UploadId"]
        try:
            parts = []
            sent = 0
            async for number, part in _parts(chunks, PART_BYTES):
                answer = await self.client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                sent += len(part)
            if sent != size:
                raise BlobStoreError(f"{name}: got {sent} bytes, expected {size}")
            await self.client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Shielded: a cancelled upload must still not leave its parts behind.
            await asyncio.shield(self._abort(key, upload_id))
            raise

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.settings.bucket, Key=key, UploadId=upload_id
            )
        except S3_ERRORS as exc:
            log.warning("aborting the multipart upload of %s failed: %s", key, exc)


@dataclass(frozen=True, slots=True)
class S3Blob:
    """One object of the bucket, opened for reading (a `Blob`): every read is a GET."""

    store: S3Blobs
    key: str
    size: int

    @property
    def local_file(self) -> Path | None:
        return None

    async def chunks(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if start >= (self.size if end is None else min(end, self.size)):
            return
        _, chunks = await self.store.read(self.key, start, end)
        async for chunk in chunks:
            yield chunk


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb", buffering=0) as file:
        while chunk := await asyncio.to_thread(file.read, READ_CHUNK_BYTES * 16):
            yield chunk


async def _body_chunks(body: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in body.iter_chunks(READ_CHUNK_BYTES):
            yield chunk
    finally:
        body.close()


async def _parts(chunks: AsyncIterator[bytes], part_bytes: int) -> AsyncIterator[tuple[int, bytes]]:
    """Regroup a stream into numbered parts of `part_bytes` (the last one shorter)."""
    buffer = bytearray()
    number = 1
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= part_bytes:
            yield number, bytes(buffer[:part_bytes])
            del buffer[:part_bytes]
            number += 1
    if buffer:
        yield number, bytes(buffer)


if TYPE_CHECKING:

    def _is_a_blob_backend(blobs: S3Blobs) -> BlobBackend:
        return blobs  # mypy checks here that S3Blobs implements the Protocol
