-- The rows an interactions partition load writes: one row per id (interactions never change).
-- Reads the partition's rows from the scratch table `staging.incoming_interactions` (see Warehouse._stage);
-- leaves temp table `staged`.
create or replace temp table staged as
select * exclude (partition_index)
from staging.incoming_interactions
where partition_index = $partition_index;

-- Ids given more than once keep one row; the window runs over the repeated ids only (see stage_messages).
delete from staged
where rowid in (
    select staged.rowid
    from staged
    semi join (select id from staged group by id having count(*) > 1) as repeated on staged.id = repeated.id
    qualify row_number() over (partition by staged.id order by created_at desc, type, details) > 1
);
