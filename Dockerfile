# The Airflow image of docker-compose.yaml: the official Airflow 3 image with this provider (and the
# SP-API sandbox, for the compose file's `sandbox` profile) installed.
#   docker compose build            # or: docker build -t sp-api-airflow .
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/selling-partner

# Runtime pins first (a layer that changes only with requirements.txt), with Airflow pinned to the
# image's version so pip never up- or downgrades it; the Celery provider for the CeleryExecutor
# (celery 5.7 removed an API that provider 3.26.0 imports).
COPY --chown=airflow:0 requirements.txt ./
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r requirements.txt \
        "apache-airflow-providers-celery==3.26.0" "celery[redis]==5.6.3"

# The provider itself (selling_partner lives in plugins/; the DAGs are mounted from ./dags).
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 plugins ./plugins
RUN pip install --no-cache-dir --no-deps .

# The SP-API sandbox and the moto SQS server (development tools; used only by the `sandbox` profile).
COPY --chown=airflow:0 include ./include
RUN pip install --no-cache-dir --no-deps ./include \
    && pip install --no-cache-dir "fastapi==0.136.3" "uvicorn==0.54.0" "python-multipart==0.0.34" \
        "boto3==1.43.117" "moto[server]==5.2.5"

WORKDIR /opt/airflow
