-- Every column of the current database's relations, its type and comment, for the data dictionary.
select table_name, column_name, lower(data_type) as data_type, comment
from duckdb_columns()
where database_name = current_database()
order by table_name, column_index;
