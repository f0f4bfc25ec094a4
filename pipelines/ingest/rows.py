"""What a landed message row holds, and how a page of Bird's JSON becomes such rows.

A page's items are keyed and their warehouse fields parsed in C, in one read by Arrow's JSON reader (no
Python object per item or field), when every item plainly has the keys of a message and its fields have the
types Bird documents. Each part falls back to msgspec, item by item, only when it must: an item that cannot
be keyed is set aside with the reason; a message whose fields do not parse keeps a null `parsed`, and the
flattening decodes its raw JSON instead. Both ways give the same rows for the pages the first accepts
(tests/test_ingest.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate, chain
from operator import attrgetter
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from pipelines.bird.models import (
    MessageKey,
    MessageRecord,
    RawMessagePage,
    RejectedRecord,
    decode_message_record,
    key_items,
)
from transforms.schema import RAW_MESSAGE_SCHEMA

UTC_MICROS = pa.timestamp("us", tz="UTC")


def _nested_as(type_: pa.DataType, string: pa.DataType, list_type: Callable[..., pa.DataType]) -> pa.DataType:
    """`type_` with every text inside it as `string` and every list as `list_type`: Parquet cannot slice
    string views inside nested types yet, and Arrow's JSON reader produces no large lists."""
    if pa.types.is_struct(type_):
        return pa.struct([f.with_type(_nested_as(f.type, string, list_type)) for f in type_])
    if pa.types.is_large_list(type_) or pa.types.is_list(type_):
        return list_type(type_.value_field.with_type(_nested_as(type_.value_type, string, list_type)))
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or type_ == pa.string_view():
        return string
    return type_


RAW_MESSAGE_ARROW_SCHEMA = pa.schema(
    f.with_type(_nested_as(f.type, pa.large_string(), pa.large_list)) if pa.types.is_nested(f.type) else f
    for f in RAW_MESSAGE_SCHEMA.to_arrow()
)
PARSED_TYPE = RAW_MESSAGE_ARROW_SCHEMA.field("parsed").type
# What a spool file holds: each message's typed keys, its JSON as served (after the PII policy) and the
# fields the warehouse flattens, parsed from it.
SPOOL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("channel_id", pa.string()),
        ("status", pa.string()),
        ("direction", pa.string()),
        ("created_at", UTC_MICROS),
        ("updated_at", UTC_MICROS),
        ("raw", pa.string()),
        ("parsed", PARSED_TYPE),
    ]
)
# The keys as Arrow's JSON reader reads them: timestamps as text, cast once their form is checked.
_KEY_TEXT_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("id", "channelId", "status", "direction", "createdAt", "updatedAt")]
)
# What Arrow's JSON reader produces for `parsed` (cast to PARSED_TYPE afterwards).
_PARSED_READER_SCHEMA = pa.schema(list(_nested_as(PARSED_TYPE, pa.large_string(), pa.list_)))
_KEYED_READER_SCHEMA = pa.schema([*_KEY_TEXT_SCHEMA, *_PARSED_READER_SCHEMA])
# RFC 3339 with an offset and at most microseconds, the form Bird writes: msgspec and Arrow read it alike.
# Any other form (or a missing key, another JSON type) sends the page to msgspec, item by item.
_TIMESTAMP_FORM = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"


@dataclass(frozen=True)
class KeyedPage:
    """A page's items as spool rows, and those that could not be keyed."""

    rows: pa.RecordBatch  # SPOOL_SCHEMA
    rejected: list[RejectedRecord]


def key_page(raw: list[bytes]) -> KeyedPage:
    """A page's items as spool rows: in bulk, in C, when every item plainly has the keys of a message;
    else item by item by msgspec, which sets aside, with the reason, each item that cannot be keyed."""
    if not raw:
        return KeyedPage(pa.RecordBatch.from_pylist([], schema=SPOOL_SCHEMA), [])
    try:
        return KeyedPage(_in_bulk(pa.array(raw, pa.binary()).cast(pa.string())), [])  # the cast checks UTF-8
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, _NotPlainlyKeyed):
        pass
    page = key_items(RawMessagePage(raw, None))
    return KeyedPage(spool_batch(page.keys, page.raw), page.rejected)


class _NotPlainlyKeyed(Exception):
    """An item lacks a key or has one in another form: msgspec must decide, item by item."""


def _in_bulk(raw: pa.StringArray) -> pa.RecordBatch:
    try:
        table = _read_json(raw, _KEYED_READER_SCHEMA)
        parsed = _parsed(table)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a field of another type: parse apart
        table = _read_json(raw, _KEY_TEXT_SCHEMA)
        parsed = parsed_from_json(raw)
    if table.num_rows != len(raw):
        raise _NotPlainlyKeyed
    keys = {name: table.column(name).combine_chunks() for name in _KEY_TEXT_SCHEMA.names}
    required = [keys[name] for name in ("id", "channelId", "status", "createdAt", "updatedAt")]
    if any(column.null_count for column in required) or pc.min(pc.utf8_length(keys["id"])).as_py() == 0:
        raise _NotPlainlyKeyed
    stamps = [keys["createdAt"], keys["updatedAt"]]
    if not all(pc.all(pc.match_substring_regex(column, _TIMESTAMP_FORM)).as_py() for column in stamps):
        raise _NotPlainlyKeyed
    created, updated = (pc.cast(column, UTC_MICROS) for column in stamps)
    return pa.record_batch(
        [keys["id"], keys["channelId"], keys["status"], keys["direction"], created, updated, raw, parsed],
        schema=SPOOL_SCHEMA,
    )


def spool_batch(keys: list[MessageKey], raw: list[bytes]) -> pa.RecordBatch:
    """Spool rows of messages keyed one by one: one C-speed pass per column, no dict per row."""
    texts = pa.array(raw, pa.binary()).cast(pa.string())  # checks the bytes are UTF-8
    return pa.record_batch(
        [
            pa.array([key.id for key in keys], pa.string()),
            pa.array([key.channel_id for key in keys], pa.string()),
            pa.array([key.status for key in keys], pa.string()),
            pa.array([key.direction for key in keys], pa.string()),
            pa.array([key.created_at for key in keys], UTC_MICROS),
            pa.array([key.updated_at for key in keys], UTC_MICROS),
            texts,
            parsed_from_json(texts),
        ],
        schema=SPOOL_SCHEMA,
    )


def with_raw(rows: pa.RecordBatch, raw: list[bytes]) -> pa.RecordBatch:
    """`rows` with their JSON replaced (by the PII policy's), and their parsed fields parsed from it again."""
    texts = pa.array(raw, pa.binary()).cast(pa.string())
    rows = rows.set_column(SPOOL_SCHEMA.get_field_index("raw"), "raw", texts)
    return rows.set_column(SPOOL_SCHEMA.get_field_index("parsed"), "parsed", parsed_from_json(texts))


def parsed_from_json(raw: pa.StringArray) -> pa.Array:
    """The `parsed` column of messages, from their JSON.

    Arrow's JSON reader does it in C, straight from the bytes of `raw`, where the messages follow each
    other, when every message fits the schema; when one does not (a field of another type, say), each
    message is decoded on its own and the ones that do not fit get a null `parsed`, which the flattening
    then decodes from `raw`.
    """
    if not len(raw):
        return pa.nulls(0, PARSED_TYPE)
    try:
        table = _read_json(raw, _PARSED_READER_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        table = None
    if table is None or table.num_rows != len(raw):
        records = [decode_message_record(item) for item in raw.to_pylist()]
        return parsed_column([r if type(r) is MessageRecord else None for r in records], PARSED_TYPE)
    return _parsed(table)


def _read_json(raw: pa.StringArray, schema: pa.Schema) -> pa.Table:
    """The JSON objects of `raw` read by Arrow's JSON reader, one thread, straight from its data buffer."""
    offsets = pa.Array.from_buffers(pa.int32(), len(raw) + 1, [None, raw.buffers()[1]], offset=raw.offset)
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    return pa_json.read_json(
        pa.BufferReader(raw.buffers()[2].slice(first, last - first)),
        read_options=pa_json.ReadOptions(block_size=last - first + 1, use_threads=False),
        parse_options=pa_json.ParseOptions(
            explicit_schema=schema,
            unexpected_field_behavior="ignore",
            newlines_in_values=True,  # messages are not one per line: they follow each other
        ),
    )


def _parsed(table: pa.Table) -> pa.Array:
    children = [table.column(name).combine_chunks() for name in _PARSED_READER_SCHEMA.names]
    return pa.StructArray.from_arrays(children, fields=list(_PARSED_READER_SCHEMA)).cast(PARSED_TYPE)


def _attribute(field_name: str) -> str:
    """The msgspec attribute of a JSON field: camelCase -> snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", field_name).lower()


def _field_names(type_: pa.DataType) -> set[str]:
    if pa.types.is_struct(type_):
        return {name for f in type_ for name in (f.name, *_field_names(f.type))}
    if pa.types.is_large_list(type_) or pa.types.is_list(type_):
        return _field_names(type_.value_type)
    return set()


# Stands in for an absent struct, so that each field is read at C speed (attrgetter over map) with no test.
_ABSENT = SimpleNamespace(**dict.fromkeys(map(_attribute, _field_names(PARSED_TYPE))))


def parsed_column(values: list, type_: pa.DataType) -> pa.Array:
    """An Arrow array of `type_` from msgspec structs (or None): a few C-speed passes per field, no dict per
    row. Struct fields are read by the snake_case form of their camelCase name; lists become offsets."""
    if pa.types.is_struct(type_):
        mask = pa.array([value is None for value in values], pa.bool_())
        present = [value or _ABSENT for value in values]
        children = [
            parsed_column(list(map(attrgetter(_attribute(field_.name)), present)), field_.type)
            for field_ in type_
        ]
        return pa.StructArray.from_arrays(children, fields=list(type_), mask=mask)
    if pa.types.is_large_list(type_) or pa.types.is_list(type_):
        mask = pa.array([value is None for value in values], pa.bool_())
        offsets = [0, *accumulate(len(value) if value else 0 for value in values)]
        items = list(chain.from_iterable(filter(None, values)))
        large = pa.types.is_large_list(type_)
        return (pa.LargeListArray if large else pa.ListArray).from_arrays(
            pa.array(offsets, pa.int64() if large else pa.int32()),
            parsed_column(items, type_.value_type),
            type=type_,
            mask=mask,
        )
    return pa.array(values, type_)
