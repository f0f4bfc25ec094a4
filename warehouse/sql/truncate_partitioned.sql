-- Empty the partitioned relations and their marts before a rebuild from the lake (in the caller's
-- transaction); the rebuild recomputes every mart row.
delete from interactions;
delete from messages;
delete from delivery_daily;
delete from failure_breakdown;
delete from interaction_daily;
