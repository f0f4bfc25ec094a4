-- top_failures: the failure codes behind the most failed messages created in [$start, $end).
-- grain: one row per failure_code x failure_source_name; most failures first.
with

failed_messages as (
    -- failed: the statuses in transforms.vocabulary.FAILED_STATUSES
    select channel_id, failure_code, failure_source_name, reason
    from messages
    where created_at >= $start
        and created_at < $end
        and status in ('sending_failed', 'delivery_failed', 'rejected')
),

failure_codes as (
    select failure_code, name as failure_name, category, description, is_known as is_known_code
    from failure_codes
),

by_code as (
    select
        failure_code,
        failure_source_name,
        count(*) as n_failed,
        count(distinct channel_id) as n_channels,
        mode(reason) as most_common_reason
    from failed_messages
    group by failure_code, failure_source_name
),

final as (
    select
        by_code.failure_code,
        failure_codes.failure_name,
        failure_codes.category,
        by_code.failure_source_name,
        by_code.n_failed,
        sum(by_code.n_failed) over () as n_failed_in_window,
        by_code.n_failed / sum(by_code.n_failed) over () as share_of_failures,
        by_code.n_channels,
        by_code.most_common_reason,
        failure_codes.description,
        coalesce(failure_codes.is_known_code, false) as is_known_code
    from by_code
    left join failure_codes using (failure_code)
)

select * from final
order by n_failed desc, failure_code nulls last, failure_source_name;
