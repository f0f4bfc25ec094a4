-- What the failure-rate report counts, so it reads thousands of counted rows instead of millions of messages.
-- grain: one row per UTC day of created_at x the messages columns named in $columns (transforms.reports
-- .counted_columns), over the messages created in [$start, $end) of $workspaces (every workspace if empty).
-- transforms.reports.message_counts is the same grain in polars; the tests hold the two equal.
with

window_messages as (
    select
        -- The UTC day as whole days since the epoch: exact, and without a time-zone lookup per row.
        epoch_us(created_at) // 86400000000 as epoch_day,
        columns(lambda name: list_contains($columns, name))
    from messages
    where created_at >= $start
        and created_at < $end
        and (len($workspaces) = 0 or list_contains($workspaces, workspace_id))
),

counted as (
    select *, count(*) as n_messages
    from window_messages
    group by all
),

final as (
    select date '1970-01-01' + epoch_day::integer as day, * exclude (epoch_day)
    from counted
)

select * from final;
