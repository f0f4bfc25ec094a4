-- The rows an interactions partition load writes: one row per id (interactions never change).
-- Reads the partition's rows from the scratch table `staging.incoming_interactions` (see Warehouse._stage);
-- leaves temp table `staged`.
create or replace temp table staged as
select * exclude (partition_index)
from staging.incoming_interactions
where partition_index = $partition_index
qualify row_number() over (partition by id order by created_at desc, type, details) = 1;
