-- Replace the failure_sources seed with the registered frame `seed`.
delete from failure_sources;
insert into failure_sources by name select * from seed;
