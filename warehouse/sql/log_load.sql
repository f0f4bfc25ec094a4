-- Record each partition load of a decided batch (see resolve_batch.sql): one row per partition, in order.
insert into load_log (relation, workspace_id, start_at, end_at, n_rows, n_replaced, loaded_at)
select
    $relation,
    batch_partitions.workspace_id,
    batch_partitions.start_at,
    batch_partitions.end_at,
    partition_counts.n_rows,
    partition_counts.n_replaced,
    now()
from batch_partitions
join partition_counts on batch_partitions.partition_index = partition_counts.partition_index
order by batch_partitions.partition_index;
