-- Daily orders and revenue by marketplace, status and currency (UTC purchase date).
-- order_total is stored as exact decimal text; the sum is rounded to 4 places (SQLite sums as REAL).
-- orders_without_total counts rows known only from ORDER_CHANGE summaries (no prices yet).
SELECT
    substr(created_time, 1, 10) AS order_date,
    marketplace_id,
    order_status,
    currency,
    COUNT(*) AS orders,
    ROUND(SUM(CAST(order_total AS REAL)), 4) AS revenue,
    COUNT(*) - COUNT(order_total) AS orders_without_total
FROM sp_orders
GROUP BY substr(created_time, 1, 10), marketplace_id, order_status, currency
