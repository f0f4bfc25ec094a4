-- daily_failure_rate: the failure and delivery rate of each channel per UTC day, for days in [$start, $end).
-- grain: one row per day x workspace_id x channel_id; oldest day first. Rates are over n_messages.
with

daily as (
    select workspace_id, channel_id, day, platform, n_messages, n_delivered, n_failed, n_pending
    from delivery_daily
    where day >= $start and day < $end
),

channels as (
    select workspace_id, channel_id, name as channel_name
    from channels
),

by_channel_day as (
    select
        day,
        workspace_id,
        channel_id,
        any_value(platform) as platform,
        sum(n_messages)::bigint as n_messages,
        sum(n_delivered)::bigint as n_delivered,
        sum(n_failed)::bigint as n_failed,
        sum(n_pending)::bigint as n_pending
    from daily
    group by day, workspace_id, channel_id
),

final as (
    select
        by_channel_day.day,
        by_channel_day.workspace_id,
        by_channel_day.channel_id,
        channels.channel_name,
        by_channel_day.platform,
        by_channel_day.n_messages,
        by_channel_day.n_delivered,
        by_channel_day.n_failed,
        by_channel_day.n_pending,
        by_channel_day.n_failed / by_channel_day.n_messages as failure_rate,
        by_channel_day.n_delivered / by_channel_day.n_messages as delivery_rate
    from by_channel_day
    left join channels using (workspace_id, channel_id)
)

select * from final
order by day, workspace_id, channel_id;
