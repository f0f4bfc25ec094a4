-- What the load in progress wrote (`staged`) and removed (`replaced`).
select (select count(*) from staged) as n_rows, (select count(*) from replaced) as n_replaced;
