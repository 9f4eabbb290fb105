"""The zip archive's records as pure parsers: what a reader of remote wheels needs to know.

The end of central directory record (EOCD) and its ZIP64 companions, the central directory
entries (with their ZIP64 extra fields), the local file header's layout, decompression
(stored or deflate, CRC checked), the limits a reader keeps to, the errors, and the HTTP
`Content-Range` header an adapter gets back from a range request. The stepping reader
that asks for byte ranges is `proxy.upstreams.zip_ranges`.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import NamedTuple

# Each record's layout and the signature it starts with.
EOCD, EOCD_SIGNATURE = struct.Struct("<IHHHHIIH"), 0x06054B50
ZIP64_LOCATOR, ZIP64_LOCATOR_SIGNATURE = struct.Struct("<IIQI"), 0x07064B50
ZIP64_EOCD, ZIP64_EOCD_SIGNATURE = struct.Struct("<IQHHIIQQQQ"), 0x06064B50
CENTRAL_ENTRY, CENTRAL_ENTRY_SIGNATURE = struct.Struct("<IHHHHHHIIIHHHHHII"), 0x02014B50
LOCAL_HEADER, LOCAL_HEADER_SIGNATURE = struct.Struct("<IHHHHHIIIHH"), 0x04034B50
EXTRA_FIELD_HEADER = struct.Struct("<HH")
ZIP64_EXTRA_ID = 0x0001
MAX_COMMENT_LENGTH = 0xFFFF
# The EOCD starts at most this many bytes before the end of the file.
EOCD_SEARCH_WINDOW = EOCD.size + MAX_COMMENT_LENGTH
FLAG_ENCRYPTED = 0x0001
FLAG_UTF8_NAME = 0x0800
METHOD_STORED = 0
METHOD_DEFLATE = 8
METHOD_NAMES = {
    1: "shrink",
    6: "implode",
    9: "deflate64",
    12: "bzip2",
    14: "lzma",
    93: "zstandard",
    95: "xz",
}


# Extra bytes asked for with a member's local header, beyond the central directory's
# name + extra + data sizes, so that a slightly longer local extra field costs no round trip.
LOCAL_HEADER_SLACK = 64


class ZipRangeError(ValueError):
    """The archive (or a range answer) is malformed or unsupported; one line naming the part."""


class ContentRangeError(ZipRangeError):
    """A `Content-Range` header value is not a satisfied `bytes` range."""


@dataclass(frozen=True)
class ZipLimits:
    """Caps on what a reader will fetch and inflate, so a hostile archive cannot make it
    download a whole large file or decompress a zip bomb."""

    max_member_size: int = 16 * 1024 * 1024
    max_central_directory_size: int = 64 * 1024 * 1024


DEFAULT_LIMITS = ZipLimits()


@dataclass(frozen=True)
class CentralDirectoryEntry:
    """One member as the central directory describes it (ZIP64 values already applied)."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    local_header_offset: int


class ContentRange(NamedTuple):
    """A parsed `Content-Range: bytes start-end/total` (end inclusive, total None for '*')."""

    start: int
    end: int
    total: int | None


def find_end_record(tail: bytes, tail_start: int) -> int | None:
    """The file offset of the EOCD in `tail` (the file's bytes from `tail_start` to its end),
    searching backwards for a signature whose comment length reaches exactly the end."""
    signature = struct.pack("<I", EOCD_SIGNATURE)
    position = len(tail) - EOCD.size
    while position >= 0:
        position = tail.rfind(signature, 0, position + len(signature))
        if position < 0:
            return None
        (comment_length,) = struct.unpack_from("<H", tail, position + EOCD.size - 2)
        if position + EOCD.size + comment_length == len(tail):
            return tail_start + position
        position -= 1
    return None


def parse_central_directory(data: bytes, entry_count: int) -> tuple[CentralDirectoryEntry, ...]:
    """All entries of a central directory (`data` is exactly its bytes)."""
    entries: list[CentralDirectoryEntry] = []
    position = 0
    while position < len(data):
        index = len(entries)
        if position + CENTRAL_ENTRY.size > len(data):
            raise ZipRangeError(f"central directory entry {index} is truncated")
        (
            signature,
            _,
            _,
            flags,
            method,
            _,
            _,
            crc32,
            compressed_size,
            uncompressed_size,
            name_length,
            extra_length,
            comment_length,
            _,
            _,
            _,
            local_header_offset,
        ) = CENTRAL_ENTRY.unpack_from(data, position)
        if signature != CENTRAL_ENTRY_SIGNATURE:
            raise ZipRangeError(
                f"bad signature 0x{signature:08x} for central directory entry {index}"
            )
        name_start = position + CENTRAL_ENTRY.size
        extra_start = name_start + name_length
        next_entry = extra_start + extra_length + comment_length
        if next_entry > len(data):
            raise ZipRangeError(f"central directory entry {index} is truncated")
        raw_name = data[name_start:extra_start]
        name = _decode_name(raw_name, flags, index)
        extra = data[extra_start : extra_start + extra_length]
        uncompressed_size, compressed_size, local_header_offset = _apply_zip64_extra(
            extra, name, uncompressed_size, compressed_size, local_header_offset
        )
        entries.append(
            CentralDirectoryEntry(
                name=name,
                raw_name=raw_name,
                flags=flags,
                method=method,
                crc32=crc32,
                compressed_size=compressed_size,
                uncompressed_size=uncompressed_size,
                local_header_offset=local_header_offset,
            )
        )
        position = next_entry
    if len(entries) != entry_count:
        raise ZipRangeError(
            f"central directory holds {len(entries)} entries, the end record says {entry_count}"
        )
    return tuple(entries)


def _decode_name(raw_name: bytes, flags: int, index: int) -> str:
    if flags & FLAG_UTF8_NAME:
        try:
            return raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise ZipRangeError(
                f"name of central directory entry {index} is not valid UTF-8: {raw_name!r}"
            ) from None
    return raw_name.decode("cp437")


def _apply_zip64_extra(
    extra: bytes, name: str, uncompressed_size: int, compressed_size: int, offset: int
) -> tuple[int, int, int]:
    """Replace the 0xFFFFFFFF fields by their values from the ZIP64 extra field."""
    saturated = 0xFFFFFFFF
    if saturated not in (uncompressed_size, compressed_size, offset):
        return uncompressed_size, compressed_size, offset
    position = 0
    while position + EXTRA_FIELD_HEADER.size <= len(extra):
        field_id, field_size = EXTRA_FIELD_HEADER.unpack_from(extra, position)
        body = extra[position + 4 : position + 4 + field_size]
        if len(body) != field_size:
            raise ZipRangeError(f"extra field 0x{field_id:04x} of {name!r} is truncated")
        if field_id == ZIP64_EXTRA_ID:
            values = struct.unpack_from(f"<{len(body) // 8}Q", body)
            wanted = [uncompressed_size, compressed_size, offset].count(saturated)
            if wanted > len(values):
                raise ZipRangeError(f"zip64 extra field of {name!r} is too short")
            resolved = iter(values)
            return (
                next(resolved) if uncompressed_size == saturated else uncompressed_size,
                next(resolved) if compressed_size == saturated else compressed_size,
                next(resolved) if offset == saturated else offset,
            )
        position += EXTRA_FIELD_HEADER.size + field_size
    raise ZipRangeError(f"{name!r} has 0xffffffff sizes or offset but no zip64 extra field")


def decompress_member(member: CentralDirectoryEntry, compressed: bytes) -> bytes:
    """Inflate (or copy) a member's data and check its size and CRC-32."""
    if member.method == METHOD_STORED:
        data = compressed
    elif member.method == METHOD_DEFLATE:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            # One byte past the declared size is enough to tell that it lies.
            data = inflater.decompress(compressed, member.uncompressed_size + 1)
        except zlib.error as error:
            raise ZipRangeError(f"deflate data of {member.name!r} is corrupt: {error}") from None
        if len(data) <= member.uncompressed_size and not inflater.eof:
            raise ZipRangeError(f"deflate data of {member.name!r} is truncated")
    else:
        method = METHOD_NAMES.get(member.method, "unknown")
        raise ZipRangeError(
            f"unsupported compression method {member.method} ({method}) for {member.name!r}"
        )
    if len(data) > member.uncompressed_size:
        raise ZipRangeError(
            f"member {member.name!r} holds more than the {member.uncompressed_size} bytes "
            f"the central directory says"
        )
    if len(data) < member.uncompressed_size:
        raise ZipRangeError(
            f"member {member.name!r} holds {len(data)} bytes, the central directory says "
            f"{member.uncompressed_size}"
        )
    crc32 = zlib.crc32(data)
    if crc32 != member.crc32:
        raise ZipRangeError(
            f"CRC-32 of {member.name!r} is 0x{crc32:08x}, the central directory says "
            f"0x{member.crc32:08x}"
        )
    return data


CONTENT_RANGE_RE = re.compile(r"\s*bytes\s+([0-9]+)-([0-9]+)/([0-9]+|\*)\s*", re.IGNORECASE)


def parse_content_range(value: str) -> ContentRange:
    """Parse a satisfied `Content-Range` value, e.g. `bytes 0-99/1234` -> (0, 99, 1234)."""
    match = CONTENT_RANGE_RE.fullmatch(value)
    if match is None:
        raise ContentRangeError(
            f"invalid Content-Range {value!r}: expected 'bytes START-END/TOTAL'"
        )
    start, end = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if end < start:
        raise ContentRangeError(f"invalid Content-Range {value!r}: end before start")
    if total is not None and end >= total:
        raise ContentRangeError(f"invalid Content-Range {value!r}: end past the total size")
    return ContentRange(start, end, total)
