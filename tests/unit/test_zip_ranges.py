"""Tests for proxy.upstreams.zip_ranges: reading one zip member from byte ranges, checked
against zipfile.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.upstreams.zip_ranges import (
    FoundMember,
    NeedBytes,
    NoMatchingMember,
    PartialFile,
    next_step,
)
from proxy.upstreams.zip_records import (
    EOCD_SEARCH_WINDOW,
    ContentRange,
    ContentRangeError,
    ZipLimits,
    ZipRangeError,
    parse_central_directory,
    parse_content_range,
)

VARIANT_JSON = b'{"variants": {"x8664v3": {"x86_64": {"level": ["v3"]}}}}\n' * 4
METADATA = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"


def build_zip(
    members: list[tuple[str, bytes, int]],
    comment: bytes = b"",
    force_zip64: bool = False,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, method in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            with archive.open(info, "w", force_zip64=force_zip64) as member:
                member.write(data)
        archive.comment = comment
    return buffer.getvalue()


def wheel_members(*extra: tuple[str, bytes, int]) -> list[tuple[str, bytes, int]]:
    return [
        ("pkg/__init__.py", b"print('hello')\n" * 50, zipfile.ZIP_DEFLATED),
        ("pkg/data.bin", bytes(range(256)) * 40, zipfile.ZIP_STORED),
        *extra,
        ("pkg-1.0.dist-info/METADATA", METADATA, zipfile.ZIP_DEFLATED),
        ("pkg-1.0.dist-info/variant.json", VARIANT_JSON, zipfile.ZIP_DEFLATED),
        ("pkg-1.0.dist-info/RECORD", b"", zipfile.ZIP_DEFLATED),
    ]


def is_variant_json(name: str) -> bool:
    return name.endswith(".dist-info/variant.json") and name.count("/") == 1


def eocd_fields(archive: bytes) -> tuple[int, int, int]:
    """(entry count, central directory size, offset) of an archive without a comment."""
    _, _, _, _, count, size, offset, _ = struct.unpack("<IHHHHIIH", archive[-22:])
    return count, size, offset


def read_by_ranges(
    archive: bytes,
    predicate: Callable[[str], bool],
    tail_size: int = 64 * 1024,
    limits: ZipLimits | None = None,
) -> tuple[FoundMember | NoMatchingMember, list[NeedBytes]]:
    """Drive the core over `archive` as a remote file would be, recording each request."""
    tail_start = max(0, len(archive) - tail_size)
    file = PartialFile(len(archive)).with_bytes(tail_start, archive[tail_start:])
    requests: list[NeedBytes] = []
    while True:
        step = next_step(file, predicate) if limits is None else next_step(file, predicate, limits)
        if not isinstance(step, NeedBytes):
            return step, requests
        assert step.length > 0 and step.start >= 0 and step.end <= len(archive)
        assert len(requests) < 10, f"too many requests: {requests}"
        requests.append(step)
        file = file.with_bytes(step.start, archive[step.start : step.end])


def found_data(archive: bytes, predicate: Callable[[str], bool], tail_size: int = 65536) -> bytes:
    step, _ = read_by_ranges(archive, predicate, tail_size)
    assert isinstance(step, FoundMember)
    return step.data


def test_member_far_from_the_tail_costs_one_request_after_it() -> None:
    big = bytes(range(256)) * 8192  # 2 MiB stored, between the wanted member and the tail
    archive = build_zip(
        [
            ("pkg-1.0.dist-info/variant.json", VARIANT_JSON, zipfile.ZIP_DEFLATED),
            ("pkg/big.bin", big, zipfile.ZIP_STORED),
            ("pkg-1.0.dist-info/RECORD", b"", zipfile.ZIP_DEFLATED),
        ]
    )
    step, requests = read_by_ranges(archive, is_variant_json, tail_size=4096)
    assert step == FoundMember("pkg-1.0.dist-info/variant.json", VARIANT_JSON)
    assert len(requests) == 1
    assert requests[0].start == 0 and requests[0].length < 1024


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_reads_stored_and_deflated_members(method: int) -> None:
    payload = b"payload bytes " * 300
    archive = build_zip([("a.txt", b"a", method), ("dir/payload.bin", payload, method)])
    assert found_data(archive, lambda name: name == "dir/payload.bin") == payload


def test_whole_file_needs_no_request() -> None:
    archive = build_zip(wheel_members())
    step = next_step(PartialFile.whole(archive), is_variant_json)
    assert step == FoundMember("pkg-1.0.dist-info/variant.json", VARIANT_JSON)


def test_central_directory_entries_match_zipfile() -> None:
    archive = build_zip([*wheel_members(), ("données/éte.txt", b"utf8 name", 8)])
    count, size, offset = eocd_fields(archive)
    entries = parse_central_directory(archive[offset : offset + size], count)
    infos = zipfile.ZipFile(io.BytesIO(archive)).infolist()
    assert [
        (e.name, e.compressed_size, e.uncompressed_size, e.local_header_offset, e.crc32)
        for e in entries
    ] == [(i.filename, i.compress_size, i.file_size, i.header_offset, i.CRC) for i in infos]


def test_no_matching_member_reports_entry_count() -> None:
    archive = build_zip([("pkg/__init__.py", b"", 8), ("pkg-1.0.dist-info/METADATA", METADATA, 8)])
    step, requests = read_by_ranges(archive, is_variant_json)
    assert step == NoMatchingMember(entry_count=2)
    assert requests == []


def test_empty_archive_has_no_matching_member() -> None:
    archive = build_zip([])
    assert len(archive) == 22
    assert read_by_ranges(archive, is_variant_json)[0] == NoMatchingMember(entry_count=0)


def test_two_matching_members_are_an_error_naming_both() -> None:
    archive = build_zip(
        [("a-1.dist-info/variant.json", b"{}", 8), ("b-1.dist-info/variant.json", b"{}", 8)]
    )
    with pytest.raises(ZipRangeError, match=r"2 members match.*'a-1\.dist-info/variant\.json'"):
        read_by_ranges(archive, is_variant_json)


def test_long_comment_asks_for_the_rest_of_the_search_window() -> None:
    comment = b"c" * 60000
    archive = build_zip(wheel_members(), comment=comment)
    step, requests = read_by_ranges(archive, is_variant_json, tail_size=1024)
    assert step == FoundMember("pkg-1.0.dist-info/variant.json", VARIANT_JSON)
    search_start = max(0, len(archive) - EOCD_SEARCH_WINDOW)
    assert requests[0] == NeedBytes(search_start, len(archive) - 1024 - search_start)


def test_false_end_record_signature_inside_the_comment_is_skipped() -> None:
    fake_record = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 9, 9, 999, 999, 3)
    archive = build_zip(wheel_members(), comment=b"note " + fake_record + b"xy")
    assert found_data(archive, is_variant_json) == VARIANT_JSON


def test_central_directory_larger_than_the_tail_asks_for_exactly_the_rest() -> None:
    members = [(f"pkg/module_{i:04d}.py", b"x = %d\n" % i, 8) for i in range(2000)]
    archive = build_zip(wheel_members(*members))
    _, directory_size, directory_offset = eocd_fields(archive)
    assert directory_size > 64 * 1024
    step, requests = read_by_ranges(archive, is_variant_json, tail_size=8192)
    assert step == FoundMember("pkg-1.0.dist-info/variant.json", VARIANT_JSON)
    assert requests[0] == NeedBytes(directory_offset, len(archive) - 8192 - directory_offset)
    assert len(requests) == 2


def test_data_descriptor_member_uses_central_directory_sizes() -> None:
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buffer = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            self.buffer += data
            return len(data)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pkg-1.0.dist-info/variant.json", VARIANT_JSON)
    data = bytes(sink.buffer)
    _, _, flags, _, _, _, _, compressed_size = struct.unpack("<IHHHHHII", data[:22])
    assert flags & 0x08 and compressed_size == 0  # the sizes follow the data
    assert found_data(data, is_variant_json) == VARIANT_JSON


def test_zip64_local_headers_are_read() -> None:
    archive = build_zip(wheel_members(), force_zip64=True)
    assert found_data(archive, is_variant_json) == VARIANT_JSON


@pytest.fixture
def zip64_archive(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A real zip64 archive (zip64 extra fields, zip64 end record and locator), made small by
    lowering zipfile's zip64 threshold while writing."""
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZIP64_LIMIT", 100)
        archive = build_zip(wheel_members(("pkg/big.bin", b"z" * 5000, 0)), force_zip64=True)
    assert struct.pack("<I", 0x06064B50) in archive
    assert struct.pack("<I", 0x07064B50) in archive
    return archive


def test_zip64_archive_is_read(zip64_archive: bytes) -> None:
    assert zipfile.ZipFile(io.BytesIO(zip64_archive)).read("pkg/big.bin") == b"z" * 5000
    assert found_data(zip64_archive, is_variant_json) == VARIANT_JSON
    assert found_data(zip64_archive, lambda name: name == "pkg/big.bin") == b"z" * 5000


def test_zip64_with_saturated_end_record_and_tiny_tail(zip64_archive: bytes) -> None:
    # As written by tools for archives over 4 GiB: the EOCD only points to the zip64 record.
    saturated = zip64_archive[:-22] + struct.pack(
        "<IHHHHIIH", 0x06054B50, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
    )
    assert zipfile.ZipFile(io.BytesIO(saturated)).read("pkg/big.bin") == b"z" * 5000
    step, requests = read_by_ranges(saturated, is_variant_json, tail_size=22)
    assert step == FoundMember("pkg-1.0.dist-info/variant.json", VARIANT_JSON)
    locator = len(saturated) - 22 - 20
    assert requests[0] == NeedBytes(locator, 20)


def test_bad_zip64_locator_offset_is_an_error(zip64_archive: bytes) -> None:
    locator = len(zip64_archive) - 22 - 20
    broken = bytearray(zip64_archive)
    struct.pack_into("<Q", broken, locator + 8, 10)
    with pytest.raises(ZipRangeError, match="no zip64 end record at offset 10"):
        read_by_ranges(bytes(broken), is_variant_json)


@settings(max_examples=60, deadline=None)
@given(
    members=st.lists(
        st.tuples(
            st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1),
            st.binary(max_size=3000),
            st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
        ),
        min_size=1,
        max_size=12,
        unique_by=lambda member: member[0],
    ),
    comment=st.binary(max_size=300),
    pick=st.integers(min_value=0),
    tail_size=st.integers(min_value=1, max_value=4096),
)
def test_any_archive_reads_like_zipfile(
    members: list[tuple[str, bytes, int]], comment: bytes, pick: int, tail_size: int
) -> None:
    archive = build_zip(members, comment=comment)
    wanted = members[pick % len(members)][0]
    expected = zipfile.ZipFile(io.BytesIO(archive)).read(wanted)
    assert found_data(archive, lambda name: name == wanted, tail_size) == expected


# --- corrupt and unsupported archives -------------------------------------------------


def member_offset(archive: bytes, name: str) -> int:
    return zipfile.ZipFile(io.BytesIO(archive)).getinfo(name).header_offset


def central_entry_offset(archive: bytes, name: str) -> int:
    _, _, directory_offset = eocd_fields(archive)
    return archive.index(name.encode(), directory_offset) - 46


def test_not_a_zip_is_an_error() -> None:
    with pytest.raises(ZipRangeError, match="no end of central directory record in the last"):
        read_by_ranges(bytes(range(256)) * 400, is_variant_json, tail_size=1000)


def test_tiny_file_is_an_error() -> None:
    with pytest.raises(ZipRangeError, match="file of 10 bytes is too small"):
        read_by_ranges(b"PK" * 5, is_variant_json)


def test_stored_data_corruption_fails_the_crc_check() -> None:
    archive = bytearray(build_zip([("pkg-1.0.dist-info/variant.json", VARIANT_JSON, 0)]))
    archive[30 + len("pkg-1.0.dist-info/variant.json") + 5] ^= 0xFF
    with pytest.raises(ZipRangeError, match=r"CRC-32 of 'pkg-1\.0\.dist-info/variant\.json' is"):
        read_by_ranges(bytes(archive), is_variant_json)


def test_corrupt_deflate_stream_is_an_error() -> None:
    name = "pkg-1.0.dist-info/variant.json"
    archive = bytearray(build_zip([(name, VARIANT_JSON, 8)]))
    archive[30 + len(name)] = 0xFF  # an invalid deflate block type
    with pytest.raises(ZipRangeError, match=f"deflate data of '{name}' is corrupt"):
        read_by_ranges(bytes(archive), is_variant_json)


def test_inflating_past_the_declared_size_is_an_error() -> None:
    name = "pkg-1.0.dist-info/variant.json"
    archive = bytearray(build_zip([(name, b"\0" * 100_000, 8)]))
    entry = central_entry_offset(bytes(archive), name)
    struct.pack_into("<I", archive, entry + 24, 1000)  # uncompressed size
    with pytest.raises(ZipRangeError, match="holds more than the 1000 bytes"):
        read_by_ranges(bytes(archive), is_variant_json)


def test_bad_local_header_signature_is_an_error() -> None:
    archive = bytearray(build_zip(wheel_members()))
    offset = member_offset(bytes(archive), "pkg-1.0.dist-info/variant.json")
    archive[offset : offset + 4] = b"JUNK"
    with pytest.raises(ZipRangeError, match=f"bad local header signature .* at {offset}"):
        read_by_ranges(bytes(archive), is_variant_json)


def test_bad_central_directory_signature_is_an_error() -> None:
    archive = bytearray(build_zip(wheel_members()))
    entry = central_entry_offset(bytes(archive), "pkg-1.0.dist-info/METADATA")
    archive[entry : entry + 4] = b"JUNK"
    with pytest.raises(
        ZipRangeError, match="bad signature 0x4b4e554a for central directory entry 2"
    ):
        read_by_ranges(bytes(archive), is_variant_json)


def test_unsupported_compression_method_is_named() -> None:
    archive = build_zip([("pkg-1.0.dist-info/variant.json", VARIANT_JSON, zipfile.ZIP_BZIP2)])
    with pytest.raises(ZipRangeError, match=r"unsupported compression method 12 \(bzip2\)"):
        read_by_ranges(archive, is_variant_json)


def test_encrypted_member_is_an_error() -> None:
    name = "pkg-1.0.dist-info/variant.json"
    archive = bytearray(build_zip([(name, VARIANT_JSON, 8)]))
    entry = central_entry_offset(bytes(archive), name)
    struct.pack_into("<H", archive, entry + 8, 0x0001)
    with pytest.raises(ZipRangeError, match=f"member '{name}' is encrypted"):
        read_by_ranges(bytes(archive), is_variant_json)


def test_member_over_the_size_limit_is_refused_before_fetching_it() -> None:
    archive = build_zip([("pkg/huge.bin", b"h" * 50_000, 0)])
    with pytest.raises(ZipRangeError, match=r"'pkg/huge\.bin' is 50000 bytes compressed, over"):
        read_by_ranges(
            archive,
            lambda name: name == "pkg/huge.bin",
            tail_size=100,
            limits=ZipLimits(max_member_size=1000),
        )


def test_central_directory_past_the_end_record_is_an_error() -> None:
    archive = bytearray(build_zip(wheel_members()))
    _, size, _ = eocd_fields(bytes(archive))
    struct.pack_into("<I", archive, len(archive) - 22 + 12, size + 1)
    with pytest.raises(ZipRangeError, match="runs past the end records"):
        read_by_ranges(bytes(archive), is_variant_json)


def test_entry_count_mismatch_is_an_error() -> None:
    archive = bytearray(build_zip(wheel_members()))
    struct.pack_into("<HH", archive, len(archive) - 22 + 8, 4, 4)
    with pytest.raises(ZipRangeError, match="holds 5 entries, the end record says 4"):
        read_by_ranges(bytes(archive), is_variant_json)


def test_invalid_utf8_name_is_an_error() -> None:
    name = "pkg-1.0.dist-info/variant.json"
    archive = bytearray(build_zip([("é.txt", b"x", 0), (name, VARIANT_JSON, 8)]))
    entry = central_entry_offset(bytes(archive), "\u00e9.txt")
    archive[entry + 46] = 0xFF
    with pytest.raises(ZipRangeError, match="name of central directory entry 0 is not valid UTF-8"):
        read_by_ranges(bytes(archive), is_variant_json)


# --- PartialFile ----------------------------------------------------------------------


def test_partial_file_merges_overlapping_and_adjacent_spans() -> None:
    source = bytes(range(100))
    file = PartialFile(100).with_bytes(10, source[10:20]).with_bytes(30, source[30:40])
    assert file.read(10, 10) == source[10:20]
    assert file.read(15, 20) is None
    assert file.first_gap(15, 35) == NeedBytes(20, 10)
    file = file.with_bytes(20, source[20:30])
    assert file.spans == ((10, source[10:40]),)
    assert file.first_gap(15, 35) is None
    assert file.with_bytes(5, source[5:45]).spans == ((5, source[5:45]),)


def test_partial_file_refuses_changed_bytes() -> None:
    file = PartialFile(100).with_bytes(10, b"abcdef")
    with pytest.raises(ZipRangeError, match=r"bytes \[12, 16\) differ between two range answers"):
        file.with_bytes(12, b"XXXXXXXX")


def test_partial_file_refuses_bytes_past_its_size() -> None:
    with pytest.raises(ZipRangeError, match=r"bytes \[95, 105\) lie outside the file of 100"):
        PartialFile(100).with_bytes(95, b"x" * 10)


@given(
    size=st.integers(min_value=1, max_value=300),
    pieces=st.lists(st.tuples(st.integers(0, 299), st.integers(1, 80)), max_size=12),
    query=st.tuples(st.integers(0, 299), st.integers(1, 80)),
)
def test_partial_file_knows_exactly_what_it_was_given(
    size: int, pieces: list[tuple[int, int]], query: tuple[int, int]
) -> None:
    source = bytes(i % 251 for i in range(size))
    file = PartialFile(size)
    known: set[int] = set()
    for start, length in pieces:
        start, end = min(start, size - 1), min(start + length, size)
        file = file.with_bytes(start, source[start:end])
        known.update(range(start, end))
    start, end = min(query[0], size - 1), min(query[0] + query[1], size)
    wanted = set(range(start, end))
    assert file.read(start, end - start) == (source[start:end] if wanted <= known else None)
    gap = file.first_gap(start, end)
    missing = sorted(wanted - known)
    if not missing:
        assert gap is None
    else:
        assert gap is not None and gap.start == missing[0]
        assert set(range(gap.start, gap.end)) <= wanted - known
        assert gap.end == end or gap.end in known


# --- Content-Range --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-99/1234", ContentRange(0, 99, 1234)),
        ("bytes 1000-1233/1234", ContentRange(1000, 1233, 1234)),
        ("BYTES 5-5/*", ContentRange(5, 5, None)),
        ("  bytes 0-0/1 ", ContentRange(0, 0, 1)),
    ],
)
def test_parse_content_range(value: str, expected: ContentRange) -> None:
    assert parse_content_range(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("bytes */1234", "expected 'bytes START-END/TOTAL'"),
        ("items 0-1/2", "expected 'bytes START-END/TOTAL'"),
        ("bytes -1-5/10", "expected 'bytes START-END/TOTAL'"),
        ("bytes 9-3/10", "end before start"),
        ("bytes 0-10/10", "end past the total size"),
    ],
)
def test_parse_content_range_errors_name_the_value(value: str, reason: str) -> None:
    with pytest.raises(
        ContentRangeError, match=re.escape(f"invalid Content-Range '{value}': {reason}")
    ):
        parse_content_range(value)
