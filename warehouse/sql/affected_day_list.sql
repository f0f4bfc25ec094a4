-- The UTC days whose mart rows the load in progress recomputed.
select distinct day from affected_days order by day;
