-- The failure_sources seed as loaded, to tell whether seeds/failure_sources.csv changed since.
select * from failure_sources;
