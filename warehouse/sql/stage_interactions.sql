-- The versions an interactions batch decides between (see resolve_batch.sql), in temp table `candidates`:
-- grain, one row per version of an id. They are the batch's rows, read from its Parquet slices $spool (see
-- Warehouse._stage), at the index of their partition in the batch (`position`), and the rows of
-- `interactions` that share an id with the batch or lie in one of the windows of `batch_partitions`
-- (position -1, and `row_id`). An interaction lies in the window of its message: `window_at` is the
-- created_at of its message when that message lies in a window. [$first_start, $last_end) spans the windows,
-- so that finding their messages skips the row groups of other days.
create or replace temp table candidates as
with

window_messages as (
    select messages.id, messages.workspace_id, messages.created_at
    from messages
    semi join batch_partitions
        on messages.workspace_id = batch_partitions.workspace_id
        and messages.created_at >= batch_partitions.start_at
        and messages.created_at < batch_partitions.end_at
    where messages.created_at >= $first_start and messages.created_at < $last_end
),

staged as (
    select
        partition_index as position,
        id,
        workspace_id,
        message_id,
        created_at,
        type,
        details,
        staged_row,
        null::bigint as row_id
    from read_parquet($spool)
),

stored as (
    select
        -1 as position,
        interactions.id,
        interactions.workspace_id,
        interactions.message_id,
        interactions.created_at,
        interactions.type,
        interactions.details,
        null::bigint as staged_row,
        interactions.rowid as row_id
    from interactions
    semi join window_messages
        on interactions.message_id = window_messages.id
        and interactions.workspace_id = window_messages.workspace_id

    union

    select
        -1 as position,
        interactions.id,
        interactions.workspace_id,
        interactions.message_id,
        interactions.created_at,
        interactions.type,
        interactions.details,
        null::bigint as staged_row,
        interactions.rowid as row_id
    from interactions
    semi join staged on interactions.id = staged.id
),

versions as (
    select * from staged
    union all
    select * from stored
),

final as (
    select versions.*, window_messages.created_at as window_at
    from versions
    left join window_messages
        on versions.message_id = window_messages.id
        and versions.workspace_id = window_messages.workspace_id
)

select * from final;

-- The order of preference among the versions of each id that has more than one, in temp table `ranks`, as
-- successive partition loads would choose: the later load (interactions never change), then the newest
-- created_at, type and details.
create or replace temp table ranks as
with

repeated as (
    select id
    from candidates
    group by id
    having count(*) > 1
),

final as (
    select
        candidates.rowid as candidate,
        candidates.id,
        row_number() over (
            partition by candidates.id order by position desc, created_at desc, type, details, staged_row desc
        ) as preference
    from candidates
    semi join repeated on candidates.id = repeated.id
)

select * from final;
