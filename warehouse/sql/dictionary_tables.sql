-- The relations of the current database and their comments, for the data dictionary.
select table_name, comment
from duckdb_tables()
where database_name = current_database()
order by table_name;
