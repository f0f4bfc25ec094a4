-- 001_core: the archive's core relations, mirroring transforms/schema.py (names, order and types).
-- No primary keys: the loader guarantees one row per key (tests prove it), and DuckDB's ART indexes would
-- make every partition load reload the index from disk.

create table messages (
    id varchar not null,
    workspace_id varchar not null,
    channel_id varchar not null,
    platform varchar,
    direction varchar,
    status varchar not null,
    is_known_status boolean not null,
    reason varchar,
    details varchar,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    last_status_at timestamptz,
    scheduled_for timestamptz,
    sender_identifier varchar,
    receiver_identifier varchar,
    receiver_kind varchar,
    country_code varchar,
    body_type varchar,
    parts_count integer,
    tags varchar[],
    reference varchar,
    batch_id varchar,
    failure_code integer,
    failure_description varchar,
    failure_source_code varchar,
    failure_source_name varchar,
    is_final boolean not null,
    delivery_seconds double
);

comment on table messages is 'One row per message id: the latest version (by updated_at) of every Bird message archived, flattened from raw_messages. Partitioned by workspace_id and UTC day of created_at.';
comment on column messages.id is 'Bird message id (uuid); the grain.';
comment on column messages.workspace_id is 'Bird workspace (uuid) the message belongs to.';
comment on column messages.channel_id is 'Bird channel (uuid) that sent or received the message.';
comment on column messages.platform is 'Channel platform id (sms-messagebird, whatsapp, email-sparkpost, ...); null when the channel is unknown.';
comment on column messages.direction is 'incoming or outgoing (kept as served when Bird adds a value).';
comment on column messages.status is 'Latest Bird status (accepted, sent, delivered, delivery_failed, ...), kept as served.';
comment on column messages.is_known_status is 'True when status is one of the statuses Bird documents.';
comment on column messages.reason is 'Platform-specific status reason text, e.g. "details: unknown subscriber; reason: unknown_subscriber; code: 1".';
comment on column messages.details is 'Status details, e.g. the email bounce class (bounceHard, bounceSoft, ...).';
comment on column messages.created_at is 'UTC time Bird created the message; defines the partition day.';
comment on column messages.updated_at is 'UTC time Bird last changed the message; the newest version wins.';
comment on column messages.last_status_at is 'UTC time of the latest status change.';
comment on column messages.scheduled_for is 'UTC time a scheduled message is due to be sent; null when not scheduled.';
comment on column messages.sender_identifier is 'Sender address: the connector or contact identifier value (phone number, email, ...).';
comment on column messages.receiver_identifier is 'Receiver address: the first receiving contact or the connector identifier value.';
comment on column messages.receiver_kind is 'Kind of receiver_identifier: phone, email or other.';
comment on column messages.country_code is 'ISO 3166 region of the receiving phone number (e.g. NL); null when not a parseable phone number.';
comment on column messages.body_type is 'Body type (text, html, image, template, ...); null when the message has no body.';
comment on column messages.parts_count is 'Number of parts (e.g. SMS segments) Bird reports for the message.';
comment on column messages.tags is 'Message tags (at most 10, lower-case).';
comment on column messages.reference is 'Customer reference set when the message was sent.';
comment on column messages.batch_id is 'Batch (uuid) the message was sent in; null when not sent in a batch.';
comment on column messages.failure_code is 'Bird failure code (11XXX validation, 12XXX service, 14XXX customer, 15XXX platform); see failure_codes. Null when not failed.';
comment on column messages.failure_description is 'Bird failure description as served.';
comment on column messages.failure_source_code is 'Raw code from the failing step (a string), e.g. the SMS extended error code.';
comment on column messages.failure_source_name is 'Step where the failure happened (sms-messagebird, pre-processing, ...); see failure_sources.';
comment on column messages.is_final is 'True when the status is final (delivered, delivery_failed, sending_failed, rejected, deleted, skipped) and will not change again.';
comment on column messages.delivery_seconds is 'Seconds from created_at to last_status_at for outgoing messages in a final status; null otherwise.';

create table interactions (
    id varchar not null,
    workspace_id varchar not null,
    message_id varchar not null,
    channel_id varchar not null,
    platform varchar,
    type varchar not null,
    is_known_type boolean not null,
    details varchar,
    created_at timestamptz not null,
    link_url varchar,
    link_name varchar,
    button_payload varchar,
    reaction_emoji varchar,
    reaction_action varchar,
    conversion_type varchar,
    conversion_status varchar,
    conversion_method varchar,
    conversion_at timestamptz
);

comment on table interactions is 'One row per interaction id: a recipient''s interaction with a message (opened, clicked, read, ...). Partitioned like the messages they belong to.';
comment on column interactions.id is 'Bird interaction id; the grain.';
comment on column interactions.workspace_id is 'Bird workspace (uuid) of the message.';
comment on column interactions.message_id is 'Message (messages.id) the interaction belongs to.';
comment on column interactions.channel_id is 'Bird channel (uuid) of the message.';
comment on column interactions.platform is 'Platform id of the channel; null when unknown.';
comment on column interactions.type is 'Interaction type (opened, clicked, read, reaction, conversion, ...), kept as served.';
comment on column interactions.is_known_type is 'True when type is one of the types Bird documents.';
comment on column interactions.details is 'Type details, e.g. initial_open or item_1_clicked.';
comment on column interactions.created_at is 'UTC time of the interaction.';
comment on column interactions.link_url is 'URL of the clicked link.';
comment on column interactions.link_name is 'Name of the clicked link.';
comment on column interactions.button_payload is 'Payload of the pressed button.';
comment on column interactions.reaction_emoji is 'Emoji of a reaction.';
comment on column interactions.reaction_action is 'Reaction action (e.g. react or unreact).';
comment on column interactions.conversion_type is 'Conversion type reported for the message.';
comment on column interactions.conversion_status is 'Conversion status reported for the message.';
comment on column interactions.conversion_method is 'How the conversion was measured.';
comment on column interactions.conversion_at is 'UTC time of the conversion.';

create table channels (
    workspace_id varchar not null,
    channel_id varchar not null,
    platform varchar,
    name varchar,
    identifier varchar,
    status varchar,
    connector_id varchar
);

comment on table channels is 'One row per channel (workspace_id, channel_id), as listed by GET /workspaces/{workspaceId}/channels; replaced on each channels load.';
comment on column channels.workspace_id is 'Bird workspace (uuid); with channel_id, the grain.';
comment on column channels.channel_id is 'Bird channel (uuid).';
comment on column channels.platform is 'Platform id (sms-messagebird, whatsapp, email-sparkpost, ...), an open vocabulary.';
comment on column channels.name is 'Channel name chosen in Bird.';
comment on column channels.identifier is 'Channel identifier (phone number, sender id, email domain, ...).';
comment on column channels.status is 'Channel status as served (e.g. active).';
comment on column channels.connector_id is 'Bird connector (uuid) behind the channel.';

create table failure_codes (
    failure_code integer not null,
    name varchar,
    description varchar,
    category varchar not null,
    is_known boolean not null
);

comment on table failure_codes is 'One row per Bird failure code: the documented codes (seeds/failure_codes.csv) plus every other code observed in messages.';
comment on column failure_codes.failure_code is 'Bird failure code; the grain.';
comment on column failure_codes.name is 'Bird''s name for the code (e.g. INVALID_MESSAGE); null when not documented.';
comment on column failure_codes.description is 'What the code means, paraphrased from Bird''s docs; null for codes Bird does not document.';
comment on column failure_codes.category is 'Category from the code range: async validation error (11XXX), service error (12XXX), customer error (14XXX), platform error (15XXX), else unknown.';
comment on column failure_codes.is_known is 'True for codes in the seed; false for codes only observed in messages.';

create table failure_sources (
    failure_source_name varchar not null,
    description varchar not null,
    is_platform boolean not null
);

comment on table failure_sources is 'One row per documented failure source name (seeds/failure_sources.csv): the step where a failure happened.';
comment on column failure_sources.failure_source_name is 'Value of messages.failure_source_name; the grain.';
comment on column failure_sources.description is 'What fails at this step, from Bird''s docs.';
comment on column failure_sources.is_platform is 'True for third-party platforms (SMS, email, WhatsApp); false for Bird''s own pre-platform steps.';

create table load_log (
    relation varchar not null,
    workspace_id varchar not null,
    start_at timestamptz not null,
    end_at timestamptz not null,
    n_rows bigint not null,
    n_replaced bigint not null,
    loaded_at timestamptz not null
);

comment on table load_log is 'One row per partition load (append-only): which window of which relation was replaced, and when.';
comment on column load_log.relation is 'Relation loaded: messages or interactions.';
comment on column load_log.workspace_id is 'Bird workspace (uuid) of the partition.';
comment on column load_log.start_at is 'Inclusive UTC start of the partition window [start_at, end_at).';
comment on column load_log.end_at is 'Exclusive UTC end of the partition window.';
comment on column load_log.n_rows is 'Rows the partition holds after the load.';
comment on column load_log.n_replaced is 'Rows the load deleted before inserting (0 on a first load).';
comment on column load_log.loaded_at is 'UTC time the load transaction started.';
