-- Units sold per SKU per UTC purchase day and marketplace, cancelled orders excluded.
SELECT
    {{utc_date(o.created_time)}} AS order_date,
    o.marketplace_id,
    i.seller_sku,
    i.asin,
    COUNT(DISTINCT o.order_id) AS orders,
    SUM(i.quantity_ordered) AS units_ordered,
    SUM(COALESCE(i.quantity_shipped, 0)) AS units_shipped
FROM sp_order_items i
JOIN sp_orders o ON o.order_id = i.order_id
WHERE o.order_status <> 'CANCELLED'
GROUP BY {{utc_date(o.created_time)}}, o.marketplace_id, i.seller_sku, i.asin
