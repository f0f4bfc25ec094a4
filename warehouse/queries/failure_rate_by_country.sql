-- failure_rate_by_country: how often outgoing messages created in [$start, $end) failed, per receiving country.
-- grain: one row per country_code x platform (country_code null: not a phone number); highest rate first.
with

outgoing as (
    select country_code, platform, status
    from messages
    where created_at >= $start
        and created_at < $end
        and direction = 'outgoing'
),

by_country as (
    select
        country_code,
        platform,
        count(*) as n_messages,
        count(*) filter (status = 'delivered') as n_delivered,
        -- failed: the statuses in transforms.vocabulary.FAILED_STATUSES
        count(*) filter (status in ('sending_failed', 'delivery_failed', 'rejected')) as n_failed
    from outgoing
    group by country_code, platform
),

final as (
    select
        country_code,
        platform,
        n_messages,
        n_delivered,
        n_failed,
        n_failed / n_messages as failure_rate,
        n_delivered / n_messages as delivery_rate
    from by_country
)

select * from final
order by failure_rate desc, n_messages desc, country_code nulls last, platform;
