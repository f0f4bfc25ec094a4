-- Write a decided messages batch (see resolve_batch.sql), in the caller's transaction: delete the stored
-- rows it discards, insert its staged rows (the Parquet slices $spool) but those it discards.
delete from messages where rowid in (select row_id from discarded);

insert into messages by name
select incoming.* exclude (partition_index, staged_row)
from read_parquet($spool) as incoming
anti join discarded on incoming.staged_row = discarded.staged_row;
