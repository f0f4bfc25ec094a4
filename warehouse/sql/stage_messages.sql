-- The versions a messages batch decides between (see resolve_batch.sql), in temp table `candidates`: grain,
-- one row per version of an id. They are the batch's rows, read from its Parquet slices $spool (see
-- Warehouse._stage), at the index of their partition in the batch (`position`), and the rows of `messages`
-- that share an id with the batch or lie in one of the windows of `batch_partitions` (position -1, and
-- `row_id`). [$first_start, $last_end) spans the windows, so that finding the rows in them skips the row
-- groups of other days.
create or replace temp table candidates as
with

staged as (
    select
        partition_index as position,
        id,
        workspace_id,
        created_at,
        updated_at,
        last_status_at,
        status,
        staged_row,
        null::bigint as row_id
    from read_parquet($spool)
),

stored as (
    select
        -1 as position,
        messages.id,
        messages.workspace_id,
        messages.created_at,
        messages.updated_at,
        messages.last_status_at,
        messages.status,
        null::bigint as staged_row,
        messages.rowid as row_id
    from messages
    semi join batch_partitions
        on messages.workspace_id = batch_partitions.workspace_id
        and messages.created_at >= batch_partitions.start_at
        and messages.created_at < batch_partitions.end_at
    where messages.created_at >= $first_start and messages.created_at < $last_end

    union

    select
        -1 as position,
        messages.id,
        messages.workspace_id,
        messages.created_at,
        messages.updated_at,
        messages.last_status_at,
        messages.status,
        null::bigint as staged_row,
        messages.rowid as row_id
    from messages
    semi join staged on messages.id = staged.id
),

final as (
    select *, created_at as window_at from staged
    union all
    select *, created_at as window_at from stored
)

select * from final;

-- The order of preference among the versions of each id that has more than one, in temp table `ranks`, as
-- successive partition loads would choose: the newest updated_at, then the later load (a stored version is
-- kept only when strictly newer), then the newest last_status_at and the first status.
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
            partition by candidates.id
            order by updated_at desc, position desc, last_status_at desc nulls last, status, staged_row desc
        ) as preference
    from candidates
    semi join repeated on candidates.id = repeated.id
)

select * from final;
