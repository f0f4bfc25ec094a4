-- 003_rejected_records: the quarantine. Items of a page that could not be archived as messages are kept
-- here with the reason and the payload, never dropped; each messages load replaces its partition's rows.

create table rejected_records (
    workspace_id varchar not null,
    partition_date date not null,
    reason varchar not null,
    raw varchar not null,
    ingested_at timestamptz not null
);

comment on table rejected_records is 'One row per item of a list page that could not be archived as a message (no id, a timestamp that does not parse, a wrong type), by workspace_id x partition_date. Merely new enum values are not rejected.';
comment on column rejected_records.workspace_id is 'Bird workspace (uuid) that was being paged.';
comment on column rejected_records.partition_date is 'UTC day (partition) that was being paged when the item arrived.';
comment on column rejected_records.reason is 'Why the item was set aside, e.g. Object missing required field `id`.';
comment on column rejected_records.raw is 'The item exactly as Bird served it (JSON).';
comment on column rejected_records.ingested_at is 'When the item was paged (UTC).';
