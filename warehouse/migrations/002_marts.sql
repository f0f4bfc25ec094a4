-- 002_marts: the daily marts, mirroring the mart schemas in transforms/schema.py and computed by
-- transforms/marts.py. A load recomputes only the (workspace_id, day) rows it touched.

create table delivery_daily (
    day date not null,
    workspace_id varchar not null,
    channel_id varchar not null,
    platform varchar,
    country_code varchar,
    direction varchar,
    n_messages bigint not null,
    n_delivered bigint not null,
    n_failed bigint not null,
    n_pending bigint not null,
    n_other bigint not null,
    delivery_rate double,
    failure_rate double,
    p50_delivery_seconds double,
    p95_delivery_seconds double
);

comment on table delivery_daily is 'One row per UTC day of created_at x workspace_id x channel_id x platform x country_code x direction: message outcomes. Rates are over n_messages.';
comment on column delivery_daily.day is 'UTC day the messages were created.';
comment on column delivery_daily.workspace_id is 'Bird workspace (uuid).';
comment on column delivery_daily.channel_id is 'Bird channel (uuid).';
comment on column delivery_daily.platform is 'Channel platform id; null when the channel is unknown.';
comment on column delivery_daily.country_code is 'ISO region of the receiving phone number; null when not a phone number.';
comment on column delivery_daily.direction is 'incoming or outgoing.';
comment on column delivery_daily.n_messages is 'Messages created that day (the rates'' denominator); n_delivered + n_failed + n_pending + n_other.';
comment on column delivery_daily.n_delivered is 'Messages whose latest status is delivered.';
comment on column delivery_daily.n_failed is 'Messages whose latest status is a failure (sending_failed, delivery_failed, rejected).';
comment on column delivery_daily.n_pending is 'Messages still moving (accepted, processing, scheduled, sent).';
comment on column delivery_daily.n_other is 'Messages in any other status (deleted, skipped, statuses Bird added later).';
comment on column delivery_daily.delivery_rate is 'n_delivered / n_messages; null when n_messages is 0.';
comment on column delivery_daily.failure_rate is 'n_failed / n_messages; null when n_messages is 0.';
comment on column delivery_daily.p50_delivery_seconds is 'Median seconds from created_at to the delivered status, over delivered outgoing messages.';
comment on column delivery_daily.p95_delivery_seconds is '95th percentile of the same delivery times.';

create table failure_breakdown (
    day date not null,
    workspace_id varchar not null,
    channel_id varchar not null,
    failure_code integer,
    failure_source_name varchar,
    failure_source_code varchar,
    n_failed bigint not null,
    n_day_failures bigint not null,
    share_of_day_failures double,
    failure_name varchar,
    failure_description varchar,
    category varchar,
    is_known_code boolean not null
);

comment on table failure_breakdown is 'One row per UTC day of created_at x workspace_id x channel_id x failure_code x failure_source_name x failure_source_code: failed messages and why.';
comment on column failure_breakdown.day is 'UTC day the failed messages were created.';
comment on column failure_breakdown.workspace_id is 'Bird workspace (uuid).';
comment on column failure_breakdown.channel_id is 'Bird channel (uuid).';
comment on column failure_breakdown.failure_code is 'Bird failure code; null when the failed message carried none.';
comment on column failure_breakdown.failure_source_name is 'Step where the failure happened (see failure_sources).';
comment on column failure_breakdown.failure_source_code is 'Raw code from that step, e.g. the SMS extended error code.';
comment on column failure_breakdown.n_failed is 'Failed messages (sending_failed, delivery_failed, rejected) in this group.';
comment on column failure_breakdown.n_day_failures is 'All failed messages of this channel that day (the share''s denominator).';
comment on column failure_breakdown.share_of_day_failures is 'n_failed / n_day_failures.';
comment on column failure_breakdown.failure_name is 'Bird''s name for the code, from failure_codes; null when undocumented.';
comment on column failure_breakdown.failure_description is 'Documented description of the code, else the description Bird sent with the failures.';
comment on column failure_breakdown.category is 'Category from the code range (see failure_codes.category).';
comment on column failure_breakdown.is_known_code is 'True when the code is in the failure_codes seed.';

create table interaction_daily (
    day date not null,
    workspace_id varchar not null,
    channel_id varchar not null,
    type varchar not null,
    n_interactions bigint not null,
    n_unique_messages bigint not null,
    n_delivered bigint not null,
    rate_over_delivered double
);

comment on table interaction_daily is 'One row per UTC day of the interaction''s created_at x workspace_id x channel_id x interaction type.';
comment on column interaction_daily.day is 'UTC day the interactions happened.';
comment on column interaction_daily.workspace_id is 'Bird workspace (uuid).';
comment on column interaction_daily.channel_id is 'Bird channel (uuid).';
comment on column interaction_daily.type is 'Interaction type (opened, clicked, read, ...).';
comment on column interaction_daily.n_interactions is 'Interactions of this type that day.';
comment on column interaction_daily.n_unique_messages is 'Distinct messages with such an interaction that day (the rate''s numerator).';
comment on column interaction_daily.n_delivered is 'Outgoing messages of the channel created that day and delivered (the rate''s denominator).';
comment on column interaction_daily.rate_over_delivered is 'n_unique_messages / n_delivered; a daily approximation that can exceed 1, since interactions often come a day after their message. Null when n_delivered is 0.';
