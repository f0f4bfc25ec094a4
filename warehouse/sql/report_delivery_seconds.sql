-- The delivery times behind the report's delivery-time chart.
-- grain: one row per delivered outgoing message created in [$start, $end) of $workspaces (every workspace if
-- empty) that has a delivery time; $delivered_statuses is transforms.vocabulary.DELIVERED_STATUSES.
with

delivered as (
    select coalesce(platform, 'unknown') as platform, delivery_seconds
    from messages
    where created_at >= $start
        and created_at < $end
        and (len($workspaces) = 0 or list_contains($workspaces, workspace_id))
        and list_contains($delivered_statuses, status)
        and direction = 'outgoing'
        and delivery_seconds is not null
)

select * from delivered;
