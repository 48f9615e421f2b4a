"""``make demo`` (``python -m demo``) and ``make airflow`` (``python -m demo.ui``): the whole system on
loopback - the SP-API sandbox, moto SQS, the four DAGs, a SQLite warehouse - checked against the truth."""
