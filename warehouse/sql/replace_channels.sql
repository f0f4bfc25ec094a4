-- Replace the channels of every workspace in the registered frame `incoming` (one row per channel).
delete from channels where workspace_id in (select distinct workspace_id from incoming);
insert into channels by name
select * from incoming qualify row_number() over (partition by workspace_id, channel_id order by name) = 1;
