-- Daily orders and revenue by marketplace, status and currency (UTC purchase date).
-- revenue sums order_total (exact NUMERIC); orders_without_total counts rows known only from
-- ORDER_CHANGE summaries (no prices yet), so a gap in revenue is visible.
SELECT
    CAST(created_time AT TIME ZONE 'UTC' AS date) AS order_date,
    marketplace_id,
    order_status,
    currency,
    COUNT(*) AS orders,
    SUM(order_total) AS revenue,
    COUNT(*) - COUNT(order_total) AS orders_without_total
FROM sp_orders
GROUP BY CAST(created_time AT TIME ZONE 'UTC' AS date), marketplace_id, order_status, currency
