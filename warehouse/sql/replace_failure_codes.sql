-- Replace the failure_codes dimension with the registered frame `dimension`.
delete from failure_codes;
insert into failure_codes by name select * from dimension;
