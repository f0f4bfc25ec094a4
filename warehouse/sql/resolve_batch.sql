-- Decide a batch from its `candidates` and their `ranks` (stage_messages.sql, stage_interactions.sql) as
-- successive loads of its partitions, in order, would, with set-based statements over the batch's rows and
-- the stored rows it touches. A partition's load removes every version in its window whose id it lacks, so a
-- version is `removed` by the first later partition of `batch_partitions` doing so; of an id's versions left,
-- the one ranked first is kept. (Exactly so, unless an id's versions lie in different windows and a later
-- partition removes the version that successive loads would have kept until then: they lose the id, the
-- batch keeps the best version left.) Leaves temp tables `discarded` (the stored rows to delete, the staged
-- rows not to insert), `partition_counts` (what each partition's load wrote and replaced) and
-- `affected_days`.
create or replace temp table batch_ids as
select distinct position, id
from candidates
where position >= 0;

create or replace temp table removed as
select candidates.rowid as candidate, candidates.id, min(batch_partitions.partition_index) as removed_by
from candidates
join batch_partitions
    on candidates.workspace_id = batch_partitions.workspace_id
    and candidates.window_at >= batch_partitions.start_at
    and candidates.window_at < batch_partitions.end_at
    and candidates.position < batch_partitions.partition_index
anti join batch_ids
    on batch_partitions.partition_index = batch_ids.position
    and candidates.id = batch_ids.id
group by candidates.rowid, candidates.id;

create or replace temp table discarded as
with

ranked_survivors as (
    select ranks.*
    from ranks
    anti join removed on ranks.candidate = removed.candidate
),

losers as (
    select candidate from ranked_survivors
    except
    select arg_min(candidate, preference) from ranked_survivors group by id
),

final as (
    select candidates.staged_row, candidates.row_id
    from candidates
    where candidates.rowid in (select candidate from removed union all select candidate from losers)
)

select * from final;

-- A partition's load replaces, once per id, the versions alive when it comes that share an id with it or
-- that it removes. Only an id with more than one version can share it with a later partition.
create or replace temp table partition_counts as
with

shared as (
    select batch_ids.position as partition_index, ranks.id
    from ranks
    join candidates on ranks.candidate = candidates.rowid
    join batch_ids on ranks.id = batch_ids.id and candidates.position < batch_ids.position
    left join removed on ranks.candidate = removed.candidate
    where removed.removed_by is null or batch_ids.position < removed.removed_by
),

replaced as (
    select partition_index, id from shared
    union
    select removed_by as partition_index, id from removed
),

written_counts as (
    select position as partition_index, count(*) as n_rows
    from batch_ids
    group by all
),

replaced_counts as (
    select partition_index, count(*) as n_replaced
    from replaced
    group by all
),

final as (
    select
        batch_partitions.partition_index,
        coalesce(written_counts.n_rows, 0) as n_rows,
        coalesce(replaced_counts.n_replaced, 0) as n_replaced
    from batch_partitions
    left join written_counts on batch_partitions.partition_index = written_counts.partition_index
    left join replaced_counts on batch_partitions.partition_index = replaced_counts.partition_index
)

select * from final;

-- The (workspace, UTC day) pairs whose mart rows the batch changes: the days of every version it weighed.
create or replace temp table affected_days as
select distinct workspace_id, utc_day(created_at) as day
from candidates;
