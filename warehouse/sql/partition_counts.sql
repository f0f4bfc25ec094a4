-- What each partition load of the decided batch wrote and replaced (see resolve_batch.sql), in order.
select n_rows, n_replaced from partition_counts order by partition_index;
