-- The rows a messages partition load writes: one row per id, the newest updated_at winning, and a version
-- the warehouse already holds with a newer updated_at kept over an older incoming one.
-- Reads the partition's rows from the scratch table `staging.incoming_messages` (see Warehouse._stage);
-- leaves temp table `staged`.
create or replace temp table staged as
select * exclude (partition_index)
from staging.incoming_messages
where partition_index = $partition_index;

-- Ids given more than once keep their newest version. A landed partition holds each id once (a blocking
-- check), so the window runs over the repeated ids only: over a million rows it cost 4x the copy above.
delete from staged
where rowid in (
    select staged.rowid
    from staged
    semi join (select id from staged group by id having count(*) > 1) as repeated on staged.id = repeated.id
    qualify row_number() over (
        partition by staged.id order by updated_at desc, last_status_at desc nulls last, status
    ) > 1
);

create or replace temp table newer_in_warehouse as
select messages.*
from messages
semi join staged
    on messages.id = staged.id
    and messages.updated_at > staged.updated_at;

delete from staged where id in (select id from newer_in_warehouse);

insert into staged by name select * from newer_in_warehouse;
