-- status_events_by_day: final statuses by the UTC day they happened (event time), against the day the
-- message was sent (send-time cohort), for final statuses reached in [$start, $end): late receipts show as
-- rows whose status_day is after sent_day.
-- grain: one row per status_day x sent_day x workspace_id x channel_id x status.
with

final_messages as (
    select workspace_id, channel_id, status, created_at, last_status_at
    from messages
    where is_final
        and last_status_at >= $start
        and last_status_at < $end
),

final as (
    select
        cast(last_status_at at time zone 'utc' as date) as status_day,
        cast(created_at at time zone 'utc' as date) as sent_day,
        workspace_id,
        channel_id,
        status,
        count(*) as n_messages,
        datediff('day', cast(created_at at time zone 'utc' as date),
            cast(last_status_at at time zone 'utc' as date)) as days_late
    from final_messages
    group by all
)

select * from final
order by status_day, sent_day, workspace_id, channel_id, status
