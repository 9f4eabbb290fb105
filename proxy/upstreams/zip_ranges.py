"""Reading one member of a zip archive from byte ranges of it, without I/O.

Owns the zip structures a reader of a remote wheel needs: the end of central directory
record (EOCD, found by searching backwards past any archive comment), the ZIP64 EOCD
locator and record, the central directory entries (with their ZIP64 extra fields), the
local file header of the chosen member, and its decompression (stored or deflate, CRC
checked). Also parses the HTTP `Content-Range` header an adapter gets back from a range
request. Everything here is pure: plain functions over frozen dataclasses.

The protocol ("give me bytes, I tell you what I need next or the answer")::

    file = PartialFile(size=total_size, spans=((tail_start, tail_bytes),))
    while True:
        step = next_step(file, predicate)
        if isinstance(step, NeedBytes):
            file = file.with_bytes(step.start, fetch(step.start, step.length))
        elif isinstance(step, FoundMember):
            ...  # step.data: the member's decompressed bytes
        else:
            ...  # NoMatchingMember: no member name satisfies the predicate

`PartialFile` is what is known of the remote file so far; `next_step` re-reads the zip
structures from it on every call and asks for the first missing bytes it needs. A typical
wheel costs two requests: the tail (EOCD and central directory) and the member's local
header with its data (asked for in one range, sized from the central directory entry).

Decisions where the zip specification leaves room: offsets are taken as absolute (no
support for data prepended to the archive); the EOCD must end exactly at the end of the
file (its comment length must match), as written by every wheel builder; more than one
member matching the predicate is an error, since the caller asked for "the" member.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

_EOCD = struct.Struct("<IHHHHIIH")
_EOCD_SIGNATURE = 0x06054B50
_ZIP64_LOCATOR = struct.Struct("<IIQI")
_ZIP64_LOCATOR_SIGNATURE = 0x07064B50
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")
_ZIP64_EOCD_SIGNATURE = 0x06064B50
_CENTRAL_ENTRY = struct.Struct("<IHHHHHHIIIHHHHHII")
_CENTRAL_ENTRY_SIGNATURE = 0x02014B50
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_HEADER_SIGNATURE = 0x04034B50
_EXTRA_FIELD_HEADER = struct.Struct("<HH")
_ZIP64_EXTRA_ID = 0x0001

MAX_COMMENT_LENGTH = 0xFFFF
# The EOCD starts at most this many bytes before the end of the file.
EOCD_SEARCH_WINDOW = _EOCD.size + MAX_COMMENT_LENGTH

_FLAG_ENCRYPTED = 0x0001
_FLAG_UTF8_NAME = 0x0800
_METHOD_STORED = 0
_METHOD_DEFLATE = 8
_METHOD_NAMES = {
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
_LOCAL_HEADER_SLACK = 64


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
class NeedBytes:
    """The next bytes to fetch: `length` (> 0) bytes from `start`."""

    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class FoundMember:
    """The answer: the one member whose name matched, decompressed and CRC checked."""

    name: str
    data: bytes


@dataclass(frozen=True)
class NoMatchingMember:
    """The answer when no member name satisfies the predicate."""

    entry_count: int


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


@dataclass(frozen=True)
class CentralDirectoryLocation:
    """Where the central directory lies, read from the EOCD (or its ZIP64 record)."""

    offset: int
    size: int
    entry_count: int
    # Where the end records start (the ZIP64 record if any, else the EOCD).
    end_records_offset: int


class ContentRange(NamedTuple):
    """A parsed `Content-Range: bytes start-end/total` (end inclusive, total None for '*')."""

    start: int
    end: int
    total: int | None


@dataclass(frozen=True)
class PartialFile:
    """What is known so far of a file of `size` bytes: sorted, disjoint, non-adjacent spans
    `(start, data)`."""

    size: int
    spans: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ZipRangeError(f"file size {self.size} is negative")
        previous_end = -1
        for start, data in self.spans:
            if not data or start <= previous_end or start + len(data) > self.size:
                raise ZipRangeError(
                    f"span of {len(data)} bytes at {start} is empty, out of order or past "
                    f"the file size {self.size}"
                )
            previous_end = start + len(data)

    @classmethod
    def whole(cls, data: bytes) -> PartialFile:
        """A file whose every byte is known."""
        return cls(size=len(data), spans=((0, data),) if data else ())

    def with_bytes(self, start: int, data: bytes) -> PartialFile:
        """This file plus `data` at `start`; bytes known twice must agree."""
        end = start + len(data)
        if start < 0 or end > self.size:
            raise ZipRangeError(f"bytes [{start}, {end}) lie outside the file of {self.size} bytes")
        if not data:
            return self
        merged_start, merged = start, data
        kept: list[tuple[int, bytes]] = []
        for span_start, span in self.spans:
            span_end = span_start + len(span)
            merged_end = merged_start + len(merged)
            if span_end < merged_start or span_start > merged_end:
                kept.append((span_start, span))
                continue
            overlap_start, overlap_end = max(span_start, merged_start), min(span_end, merged_end)
            if (
                span[overlap_start - span_start : overlap_end - span_start]
                != merged[overlap_start - merged_start : overlap_end - merged_start]
            ):
                raise ZipRangeError(
                    f"bytes [{overlap_start}, {overlap_end}) differ between two range answers"
                )
            union_start = min(span_start, merged_start)
            union = bytearray(max(span_end, merged_end) - union_start)
            union[span_start - union_start : span_end - union_start] = span
            union[merged_start - union_start : merged_end - union_start] = merged
            merged_start, merged = union_start, bytes(union)
        kept.append((merged_start, merged))
        kept.sort(key=lambda span: span[0])
        return PartialFile(self.size, tuple(kept))

    def read(self, start: int, length: int) -> bytes | None:
        """The bytes [start, start + length), or None when any of them is unknown."""
        for span_start, span in self.spans:
            if span_start <= start and start + length <= span_start + len(span):
                return span[start - span_start : start - span_start + length]
        return None

    def first_gap(self, start: int, end: int) -> NeedBytes | None:
        """The first run of unknown bytes within [start, end), or None when all are known."""
        position = start
        for span_start, span in self.spans:
            if span_start <= position < span_start + len(span):
                position = span_start + len(span)
                break
        if position >= end:
            return None
        gap_end = end
        for span_start, _ in self.spans:
            if span_start > position:
                gap_end = min(gap_end, span_start)
                break
        return NeedBytes(position, gap_end - position)

    def known_tail_start(self) -> int:
        """Where the known bytes reaching the end of the file begin (`size` if none do)."""
        if self.spans:
            last_start, last = self.spans[-1]
            if last_start + len(last) == self.size:
                return last_start
        return self.size


class _BytesMissing(Exception):
    """Raised inside `next_step` to stop parsing and ask for `need`."""

    def __init__(self, need: NeedBytes) -> None:
        super().__init__(f"need bytes [{need.start}, {need.end})")
        self.need = need


def _require(file: PartialFile, start: int, length: int, prefetch_length: int = 0) -> bytes:
    """The bytes [start, start + length), or raise asking for them (and up to
    `prefetch_length` bytes from `start`, likely needed next)."""
    if start < 0 or start + length > file.size:
        raise ZipRangeError(f"bytes [{start}, {start + length}) lie outside the file")
    if length == 0:
        return b""
    data = file.read(start, length)
    if data is not None:
        return data
    want_end = min(file.size, start + max(length, prefetch_length))
    need = file.first_gap(start, want_end)
    assert need is not None, "read() found no span, so a gap must exist"
    raise _BytesMissing(need)


def next_step(
    file: PartialFile,
    predicate: Callable[[str], bool],
    limits: ZipLimits = DEFAULT_LIMITS,
) -> NeedBytes | FoundMember | NoMatchingMember:
    """Given what is known of a zip file, say which bytes are needed next, or the answer."""
    try:
        location = _locate_central_directory(file, limits)
        directory = _require(file, location.offset, location.size)
        entries = parse_central_directory(directory, location.entry_count)
        matching = [entry for entry in entries if predicate(entry.name)]
        if not matching:
            return NoMatchingMember(len(entries))
        if len(matching) > 1:
            names = ", ".join(repr(entry.name) for entry in matching)
            raise ZipRangeError(f"{len(matching)} members match, expected one: {names}")
        member = matching[0]
        return FoundMember(member.name, _read_member(file, member, location, limits))
    except _BytesMissing as missing:
        return missing.need


def _locate_central_directory(file: PartialFile, limits: ZipLimits) -> CentralDirectoryLocation:
    """Find the EOCD (and ZIP64 records) in `file`, raising `_BytesMissing` for bytes not known."""
    if file.size < _EOCD.size:
        raise ZipRangeError(f"file of {file.size} bytes is too small to be a zip archive")
    search_start = file.size - min(file.size, EOCD_SEARCH_WINDOW)
    tail_start = file.known_tail_start()
    if tail_start == file.size:
        _require(file, search_start, file.size - search_start)
    tail_start = max(tail_start, search_start)
    tail = _require(file, tail_start, file.size - tail_start)
    eocd_offset = find_end_record(tail, tail_start)
    if eocd_offset is None:
        if tail_start > search_start:
            _require(file, search_start, file.size - search_start)
        raise ZipRangeError(
            f"no end of central directory record in the last {file.size - search_start} bytes"
        )
    (_, disk, directory_disk, _, entry_count, directory_size, directory_offset, _) = _EOCD.unpack(
        tail[eocd_offset - tail_start : eocd_offset - tail_start + _EOCD.size]
    )
    end_records_offset = eocd_offset
    locator_offset = eocd_offset - _ZIP64_LOCATOR.size
    if locator_offset >= 0:
        locator = _require(file, locator_offset, _ZIP64_LOCATOR.size)
        signature, _, zip64_offset, disk_count = _ZIP64_LOCATOR.unpack(locator)
        if signature == _ZIP64_LOCATOR_SIGNATURE:
            if disk_count > 1:
                raise ZipRangeError(f"multi-disk archives are not supported ({disk_count} disks)")
            if zip64_offset + _ZIP64_EOCD.size > locator_offset:
                raise ZipRangeError(
                    f"zip64 end record offset {zip64_offset} overlaps its locator at "
                    f"{locator_offset}"
                )
            record = _require(file, zip64_offset, _ZIP64_EOCD.size)
            (
                signature,
                _,
                _,
                _,
                disk,
                directory_disk,
                _,
                entry_count,
                directory_size,
                directory_offset,
            ) = _ZIP64_EOCD.unpack(record)
            if signature != _ZIP64_EOCD_SIGNATURE:
                raise ZipRangeError(f"no zip64 end record at offset {zip64_offset}")
            end_records_offset = zip64_offset
    if disk != 0 or directory_disk != 0:
        raise ZipRangeError(
            f"multi-disk archives are not supported (disk {disk}, directory on {directory_disk})"
        )
    if directory_offset + directory_size > end_records_offset:
        raise ZipRangeError(
            f"central directory [{directory_offset}, {directory_offset + directory_size}) "
            f"runs past the end records at {end_records_offset}"
        )
    if directory_size > limits.max_central_directory_size:
        raise ZipRangeError(
            f"central directory of {directory_size} bytes is over the limit of "
            f"{limits.max_central_directory_size}"
        )
    if entry_count * _CENTRAL_ENTRY.size > directory_size:
        raise ZipRangeError(
            f"end record lists {entry_count} entries, more than a central directory of "
            f"{directory_size} bytes can hold"
        )
    return CentralDirectoryLocation(
        directory_offset, directory_size, entry_count, end_records_offset
    )


def find_end_record(tail: bytes, tail_start: int) -> int | None:
    """The file offset of the EOCD in `tail` (the file's bytes from `tail_start` to its end),
    searching backwards for a signature whose comment length reaches exactly the end."""
    signature = struct.pack("<I", _EOCD_SIGNATURE)
    position = len(tail) - _EOCD.size
    while position >= 0:
        position = tail.rfind(signature, 0, position + len(signature))
        if position < 0:
            return None
        (comment_length,) = struct.unpack_from("<H", tail, position + _EOCD.size - 2)
        if position + _EOCD.size + comment_length == len(tail):
            return tail_start + position
        position -= 1
    return None


def parse_central_directory(data: bytes, entry_count: int) -> tuple[CentralDirectoryEntry, ...]:
    """All entries of a central directory (`data` is exactly its bytes)."""
    entries: list[CentralDirectoryEntry] = []
    position = 0
    while position < len(data):
        index = len(entries)
        if position + _CENTRAL_ENTRY.size > len(data):
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
        ) = _CENTRAL_ENTRY.unpack_from(data, position)
        if signature != _CENTRAL_ENTRY_SIGNATURE:
            raise ZipRangeError(
                f"bad signature 0x{signature:08x} for central directory entry {index}"
            )
        name_start = position + _CENTRAL_ENTRY.size
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
    if flags & _FLAG_UTF8_NAME:
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
    while position + _EXTRA_FIELD_HEADER.size <= len(extra):
        field_id, field_size = _EXTRA_FIELD_HEADER.unpack_from(extra, position)
        body = extra[position + 4 : position + 4 + field_size]
        if len(body) != field_size:
            raise ZipRangeError(f"extra field 0x{field_id:04x} of {name!r} is truncated")
        if field_id == _ZIP64_EXTRA_ID:
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
        position += _EXTRA_FIELD_HEADER.size + field_size
    raise ZipRangeError(f"{name!r} has 0xffffffff sizes or offset but no zip64 extra field")


def _read_member(
    file: PartialFile,
    member: CentralDirectoryEntry,
    location: CentralDirectoryLocation,
    limits: ZipLimits,
) -> bytes:
    for what, size in (
        ("compressed", member.compressed_size),
        ("uncompressed", member.uncompressed_size),
    ):
        if size > limits.max_member_size:
            raise ZipRangeError(
                f"member {member.name!r} is {size} bytes {what}, over the limit of "
                f"{limits.max_member_size}"
            )
    if member.flags & _FLAG_ENCRYPTED:
        raise ZipRangeError(f"member {member.name!r} is encrypted")
    header_offset = member.local_header_offset
    if header_offset + _LOCAL_HEADER.size > location.offset:
        raise ZipRangeError(
            f"local header of {member.name!r} at {header_offset} is not before the central "
            f"directory at {location.offset}"
        )
    likely_length = (
        _LOCAL_HEADER.size + len(member.raw_name) + _LOCAL_HEADER_SLACK + member.compressed_size
    )
    header = _require(file, header_offset, _LOCAL_HEADER.size, likely_length)
    signature, *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != _LOCAL_HEADER_SIGNATURE:
        raise ZipRangeError(
            f"bad local header signature 0x{signature:08x} for {member.name!r} at {header_offset}"
        )
    data_offset = header_offset + _LOCAL_HEADER.size + name_length + extra_length
    data_end = data_offset + member.compressed_size
    if data_end > location.offset:
        raise ZipRangeError(
            f"data of {member.name!r} [{data_offset}, {data_end}) runs into the central "
            f"directory at {location.offset}"
        )
    local_name = _require(file, header_offset + _LOCAL_HEADER.size, name_length)
    if local_name != member.raw_name:
        raise ZipRangeError(
            f"local header at {header_offset} names {local_name!r}, the central directory "
            f"{member.raw_name!r}"
        )
    compressed = _require(file, data_offset, member.compressed_size)
    return decompress_member(member, compressed)


def decompress_member(member: CentralDirectoryEntry, compressed: bytes) -> bytes:
    """Inflate (or copy) a member's data and check its size and CRC-32."""
    if member.method == _METHOD_STORED:
        data = compressed
    elif member.method == _METHOD_DEFLATE:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            # One byte past the declared size is enough to tell that it lies.
            data = inflater.decompress(compressed, member.uncompressed_size + 1)
        except zlib.error as error:
            raise ZipRangeError(f"deflate data of {member.name!r} is corrupt: {error}") from None
        if len(data) <= member.uncompressed_size and not inflater.eof:
            raise ZipRangeError(f"deflate data of {member.name!r} is truncated")
    else:
        method = _METHOD_NAMES.get(member.method, "unknown")
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


_CONTENT_RANGE_RE = re.compile(r"\s*bytes\s+([0-9]+)-([0-9]+)/([0-9]+|\*)\s*", re.IGNORECASE)


def parse_content_range(value: str) -> ContentRange:
    """Parse a satisfied `Content-Range` value, e.g. `bytes 0-99/1234` -> (0, 99, 1234)."""
    match = _CONTENT_RANGE_RE.fullmatch(value)
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
