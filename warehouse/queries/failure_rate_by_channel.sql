-- failure_rate_by_channel: how often the messages created in [$start, $end) failed, per channel.
-- grain: one row per workspace_id x channel_id; highest failure rate first. Rates are over n_messages.
with

windowed_messages as (
    select workspace_id, channel_id, platform, status, is_final
    from messages
    where created_at >= $start and created_at < $end
),

channels as (
    select workspace_id, channel_id, name as channel_name
    from channels
),

by_channel as (
    select
        workspace_id,
        channel_id,
        any_value(platform) as platform,
        count(*) as n_messages,
        count(*) filter (status = 'delivered') as n_delivered,
        -- failed: the statuses in transforms.vocabulary.FAILED_STATUSES
        count(*) filter (status in ('sending_failed', 'delivery_failed', 'rejected')) as n_failed,
        count(*) filter (not is_final) as n_pending
    from windowed_messages
    group by workspace_id, channel_id
),

final as (
    select
        by_channel.workspace_id,
        by_channel.channel_id,
        channels.channel_name,
        by_channel.platform,
        by_channel.n_messages,
        by_channel.n_delivered,
        by_channel.n_failed,
        by_channel.n_pending,
        by_channel.n_failed / by_channel.n_messages as failure_rate,
        by_channel.n_delivered / by_channel.n_messages as delivery_rate
    from by_channel
    left join channels using (workspace_id, channel_id)
)

select * from final
order by failure_rate desc, n_messages desc, workspace_id, channel_id;
