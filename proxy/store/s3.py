"""Blobs in an S3-compatible object store, keyed by the hex sha256 of their bytes.

An object is `<prefix><sha256>` and is written once, only after its bytes were verified
against that hash: a single `PUT` with `If-None-Match: *` (a 412 means it is already there,
which is as good), or a multipart upload for big files. Some stores (Ceph RGW 16) ignore
the condition when a multipart upload completes, so a multipart write first asks whether
the object exists; an overwrite that slips through a race writes identical bytes. A failed
multipart upload is aborted, and uploads older than `ORPHAN_AGE_S` under the prefix are
swept when the backend opens (a replica killed mid-upload leaves one behind; an object
store never shows an unfinished upload as an object). Reads stream, whole or a range.

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
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from proxy.cluster.settings import S3Settings

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


def check_sha256(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a hex sha256: {sha256[:80]!r}")
    return sha256


class S3Blobs:
    """One bucket (under one prefix) of an S3-compatible store; `open()` before use."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise BlobStoreError("the object store client is not open")
        return self._client

    def object_key(self, sha256: str) -> str:
        return f"{self.settings.prefix}{check_sha256(sha256)}"

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self, *, sweep_orphans: bool = True) -> None:
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

    async def check(self) -> str | None:
        """None when the bucket answers, else the one-line reason (for `/health`)."""
        try:
            await self.client.head_bucket(Bucket=self.settings.bucket)
        except STORE_ERRORS as exc:
            return f"object store: {exc}"[:300]
        return None

    # -- the blob API ----------------------------------------------------------------------

    async def stat(self, sha256: str) -> int | None:
        """The stored object's size, or None when there is none."""
        try:
            head = await self.client.head_object(
                Bucket=self.settings.bucket, Key=self.object_key(sha256)
            )
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    async def read(self, sha256: str, start: int = 0) -> tuple[int, AsyncIterator[bytes]]:
        """(bytes that follow, their chunks) of the object from byte `start` on.

        Raises `FileNotFoundError` when there is no such object.
        """
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            answer = await self.client.get_object(
                Bucket=self.settings.bucket, Key=self.object_key(sha256), **extra
            )
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(sha256) from None
            raise
        return int(answer["ContentLength"]), _body_chunks(answer["Body"])

    async def put(self, sha256: str, size: int, chunks: AsyncIterator[bytes]) -> bool:
        """Store verified bytes under their hash; False when the object was already there."""
        if size <= PART_BYTES:
            body = b"".join([chunk async for chunk in chunks])
            if len(body) != size:
                raise BlobStoreError(f"{sha256}: got {len(body)} bytes, expected {size}")
            return await self._put_single(sha256, body)
        if await self.stat(sha256) is not None:
            return False
        await self._put_multipart(sha256, size, chunks)
        return True

    async def delete(self, sha256: str) -> None:
        await self.client.delete_object(Bucket=self.settings.bucket, Key=self.object_key(sha256))

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

    async def _put_single(self, sha256: str, body: bytes) -> bool:
        try:
            await self.client.put_object(
                Bucket=self.settings.bucket,
                Key=self.object_key(sha256),
                Body=body,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True

    async def _put_multipart(self, sha256: str, size: int, chunks: AsyncIterator[bytes]) -> None:
        bucket, key = self.settings.bucket, self.object_key(sha256)
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
                raise BlobStoreError(f"{sha256}: got {sent} bytes, expected {size}")
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
