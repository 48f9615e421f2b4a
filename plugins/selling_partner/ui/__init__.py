"""The "Amazon orders" page inside the Airflow UI (Browse -> Amazon orders).

``plugin`` registers it with Airflow, ``app`` serves it (guarded routes), ``sources`` reads the
warehouse and the Variables, ``panels`` shapes the numbers (pure) and ``render`` draws HTML and SVG.
"""
