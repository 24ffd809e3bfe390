# The Airflow image of the docker-compose stack: the official image, Lethe's pinned
# requirements, and the project itself (DAGs, plugins, policies, the compose init step)
# baked in, so the image is what runs in production, not a mount of a checkout.
#
#   docker compose build        # after any change to the code, the policies or the pins
#
# The base image's Airflow version is the one requirements.txt pins (tests/test_compose.py).
FROM apache/airflow:3.3.2-python3.11 AS engine

COPY --chown=airflow:root requirements.txt /opt/lethe/requirements.txt
# Exactly what requirements.txt pins (apache-airflow included, so pip cannot move it);
# `pip check` fails the build on a conflict with what the base image brings.
RUN pip install --no-cache-dir -r /opt/lethe/requirements.txt && pip check

COPY --chown=airflow:root dags/ /opt/airflow/dags/
# plugins/: the engine (the lethe package) and the Airflow plugin file plugins/lethe_plugin.py;
# never the development kit (devkit/), which only the "devkit" stage below adds.
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root deploy/compose/ /opt/airflow/deploy/compose/

# `python -m lethe...` commands (init, demo data) import the package from plugins/.
ENV PYTHONPATH=/opt/airflow/plugins \
    LETHE_POLICY_DIR=/opt/airflow/include/policies

# The "demo" profile's data loader only: the engine plus the development kit (the synthetic
# provider), never what runs the DAGs.
FROM engine AS devkit
COPY --chown=airflow:root devkit/ /opt/lethe/devkit/
ENV PYTHONPATH=/opt/airflow/plugins:/opt/lethe/devkit

# The default build: the engine alone.
FROM engine
