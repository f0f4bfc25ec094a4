-- The span of the days in `affected_days`, [start, end) in UTC: bounds the mart inputs' scans to their days.
select min(day)::timestamptz as start, (max(day) + 1)::timestamptz as end from affected_days;
