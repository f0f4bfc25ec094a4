-- The rows an interactions partition load writes: one row per id (interactions never change).
-- Reads the registered frame `incoming`; leaves temp table `staged`.
create or replace temp table staged as
select *
from incoming
qualify row_number() over (partition by id order by created_at desc, type, details) = 1;
