-- Orders are listed newest first by id, by state or all of a tenant's: these indexes give them
-- in that order, where the one by state and creation time (and, without a state, the tenant's
-- other indexes) left every matching order to be read and sorted for each page.
DROP INDEX ord_orders_by_state;
CREATE INDEX ord_orders_by_state ON ord_orders (tenant_id, state, id);
CREATE INDEX ord_orders_newest ON ord_orders (tenant_id, id);
