"""Reading one member of a zip archive from byte ranges of it, without I/O.

Owns the stepping reader: what is known of the remote file (`PartialFile`), finding the
end of central directory record (searching backwards past any archive comment) and the
ZIP64 records, and reading the chosen member's local header and data. The records' layouts
and parsers are `proxy.upstreams.zip_records`. Everything here is pure: plain functions
over frozen dataclasses.

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

from collections.abc import Callable
from dataclasses import dataclass

from proxy.upstreams.zip_records import (
    CENTRAL_ENTRY,
    DEFAULT_LIMITS,
    EOCD,
    EOCD_SEARCH_WINDOW,
    FLAG_ENCRYPTED,
    LOCAL_HEADER,
    LOCAL_HEADER_SIGNATURE,
    LOCAL_HEADER_SLACK,
    ZIP64_EOCD,
    ZIP64_EOCD_SIGNATURE,
    ZIP64_LOCATOR,
    ZIP64_LOCATOR_SIGNATURE,
    CentralDirectoryEntry,
    ZipLimits,
    ZipRangeError,
    decompress_member,
    find_end_record,
    parse_central_directory,
)


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
class CentralDirectoryLocation:
    """Where the central directory lies, read from the EOCD (or its ZIP64 record)."""

    offset: int
    size: int
    entry_count: int
    # Where the end records start (the ZIP64 record if any, else the EOCD).
    end_records_offset: int


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
    if file.size < EOCD.size:
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
    (_, disk, directory_disk, _, entry_count, directory_size, directory_offset, _) = EOCD.unpack(
        tail[eocd_offset - tail_start : eocd_offset - tail_start + EOCD.size]
    )
    end_records_offset = eocd_offset
    locator_offset = eocd_offset - ZIP64_LOCATOR.size
    if locator_offset >= 0:
        locator = _require(file, locator_offset, ZIP64_LOCATOR.size)
        signature, _, zip64_offset, disk_count = ZIP64_LOCATOR.unpack(locator)
        if signature == ZIP64_LOCATOR_SIGNATURE:
            if disk_count > 1:
                raise ZipRangeError(f"multi-disk archives are not supported ({disk_count} disks)")
            if zip64_offset + ZIP64_EOCD.size > locator_offset:
                raise ZipRangeError(
                    f"zip64 end record offset {zip64_offset} overlaps its locator at "
                    f"{locator_offset}"
                )
            record = _require(file, zip64_offset, ZIP64_EOCD.size)
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
            ) = ZIP64_EOCD.unpack(record)
            if signature != ZIP64_EOCD_SIGNATURE:
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
    if entry_count * CENTRAL_ENTRY.size > directory_size:
        raise ZipRangeError(
            f"end record lists {entry_count} entries, more than a central directory of "
            f"{directory_size} bytes can hold"
        )
    return CentralDirectoryLocation(
        directory_offset, directory_size, entry_count, end_records_offset
    )


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
    if member.flags & FLAG_ENCRYPTED:
        raise ZipRangeError(f"member {member.name!r} is encrypted")
    header_offset = member.local_header_offset
    if header_offset + LOCAL_HEADER.size > location.offset:
        raise ZipRangeError(
            f"local header of {member.name!r} at {header_offset} is not before the central "
            f"directory at {location.offset}"
        )
    likely_length = (
        LOCAL_HEADER.size + len(member.raw_name) + LOCAL_HEADER_SLACK + member.compressed_size
    )
    header = _require(file, header_offset, LOCAL_HEADER.size, likely_length)
    signature, *_, name_length, extra_length = LOCAL_HEADER.unpack(header)
    if signature != LOCAL_HEADER_SIGNATURE:
        raise ZipRangeError(
            f"bad local header signature 0x{signature:08x} for {member.name!r} at {header_offset}"
        )
    data_offset = header_offset + LOCAL_HEADER.size + name_length + extra_length
    data_end = data_offset + member.compressed_size
    if data_end > location.offset:
        raise ZipRangeError(
            f"data of {member.name!r} [{data_offset}, {data_end}) runs into the central "
            f"directory at {location.offset}"
        )
    local_name = _require(file, header_offset + LOCAL_HEADER.size, name_length)
    if local_name != member.raw_name:
        raise ZipRangeError(
            f"local header at {header_offset} names {local_name!r}, the central directory "
            f"{member.raw_name!r}"
        )
    compressed = _require(file, data_offset, member.compressed_size)
    return decompress_member(member, compressed)
