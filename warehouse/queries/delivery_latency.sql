-- delivery_latency: how long outgoing messages created in [$start, $end) took to reach their final status.
-- grain: one row per workspace_id x channel_id x final status; slowest p95 first.
with

final_outgoing as (
    select workspace_id, channel_id, platform, status, delivery_seconds
    from messages
    where created_at >= $start
        and created_at < $end
        and delivery_seconds is not null
),

channels as (
    select workspace_id, channel_id, name as channel_name
    from channels
),

latency as (
    select
        workspace_id,
        channel_id,
        any_value(platform) as platform,
        status,
        count(*) as n_messages,
        quantile_cont(delivery_seconds, 0.5) as p50_delivery_seconds,
        quantile_cont(delivery_seconds, 0.9) as p90_delivery_seconds,
        quantile_cont(delivery_seconds, 0.95) as p95_delivery_seconds,
        max(delivery_seconds) as max_delivery_seconds
    from final_outgoing
    group by workspace_id, channel_id, status
),

final as (
    select
        latency.workspace_id,
        latency.channel_id,
        channels.channel_name,
        latency.platform,
        latency.status,
        latency.n_messages,
        latency.p50_delivery_seconds,
        latency.p90_delivery_seconds,
        latency.p95_delivery_seconds,
        latency.max_delivery_seconds
    from latency
    left join channels using (workspace_id, channel_id)
)

select * from final
order by p95_delivery_seconds desc, workspace_id, channel_id, status;
