-- The migration ledger, created before any migration runs.
create table if not exists schema_migrations (
    version varchar not null,
    name varchar not null,
    applied_at timestamptz not null
);

comment on table schema_migrations is 'One row per applied migration file (warehouse/migrations/NNN_name.sql); a version listed here is never applied again.';
comment on column schema_migrations.version is 'Migration number, e.g. 001; the grain.';
comment on column schema_migrations.name is 'Migration name, e.g. core.';
comment on column schema_migrations.applied_at is 'UTC time the migration was applied.';
