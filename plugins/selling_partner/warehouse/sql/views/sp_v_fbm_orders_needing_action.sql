-- Merchant-fulfilled (FBM) orders that still have to be shipped, most urgent first
-- (earliest latest_ship_time; orders without a ship-by time last). Portable SQL.
SELECT
    order_id,
    marketplace_id,
    order_status,
    fulfillment_service_level,
    created_time,
    earliest_ship_time,
    latest_ship_time,
    latest_delivery_time,
    items_unshipped,
    last_updated_time
FROM sp_orders
WHERE fulfilled_by = 'MERCHANT'
  AND order_status IN ('UNSHIPPED', 'PARTIALLY_SHIPPED')
ORDER BY CASE WHEN latest_ship_time IS NULL THEN 1 ELSE 0 END, latest_ship_time, order_id
