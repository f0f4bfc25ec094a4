-- The failure_codes dimension, for the failure_breakdown mart.
select * from failure_codes;
