-- Daily orders and revenue by marketplace, status and currency (UTC purchase date).
-- revenue: sum of order_total over the orders that have one (exact NUMERIC on PostgreSQL; SQLite
--   sums the exact decimal text as REAL, rounded to 4 places).
-- orders_without_total: orders with no order_total, whatever the reason: known only from an
--   ORDER_CHANGE summary, or a complete record that carries no total yet (PENDING orders have no
--   price until payment).
-- summary_only_orders: orders known only from ORDER_CHANGE summaries (is_complete false): no
--   details yet, items without prices.
SELECT
    {{utc_date(created_time)}} AS order_date,
    marketplace_id,
    order_status,
    currency,
    COUNT(*) AS orders,
    {{money_sum(order_total)}} AS revenue,
    COUNT(*) - COUNT(order_total) AS orders_without_total,
    COUNT(CASE WHEN NOT is_complete THEN 1 END) AS summary_only_orders
FROM sp_orders
GROUP BY {{utc_date(created_time)}}, marketplace_id, order_status, currency
