# The Airflow image the docker-compose stack runs: the official image plus Lethe's pins.
# dags/, plugins/ and include/ are mounted by docker-compose.yaml.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt /opt/lethe/requirements.txt
RUN pip install --no-cache-dir -r /opt/lethe/requirements.txt
