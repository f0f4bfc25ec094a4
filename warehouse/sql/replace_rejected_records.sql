-- Replace the quarantine of one partition (workspace, partition_date) with the registered frame
-- `incoming_rejected`, in the caller's transaction.
delete from rejected_records where workspace_id = $workspace_id and partition_date = $partition_date;
insert into rejected_records by name select * from incoming_rejected;
