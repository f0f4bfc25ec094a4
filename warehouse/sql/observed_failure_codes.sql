-- Every failure code the archived messages carry: refreshes the failure_codes dimension.
select distinct failure_code from messages where failure_code is not null order by failure_code;
