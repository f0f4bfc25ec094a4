-- Record a partition load (after replace_*): what `staged` wrote and `replaced` removed.
insert into load_log (relation, workspace_id, start_at, end_at, n_rows, n_replaced, loaded_at)
select $relation, $workspace_id, $start, $end, (select count(*) from staged), (select count(*) from replaced), now();
