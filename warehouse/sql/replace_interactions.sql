-- Replace an interactions partition with `staged`, in the caller's transaction. The partition is the
-- interactions of the workspace's messages created in [start, end) (load those messages first); ids in
-- `staged` are deleted wherever they are. Leaves temp table `replaced` (the rows deleted).
create or replace temp table replaced as
select id, workspace_id, created_at
from interactions
where (
        workspace_id = $workspace_id
        and message_id in (
            select id
            from messages
            where workspace_id = $workspace_id and created_at >= $start and created_at < $end
        )
    )
    or id in (select id from staged);

delete from interactions where id in (select id from replaced);

insert into interactions by name select * from staged;
