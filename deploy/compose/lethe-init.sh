#!/usr/bin/env bash
# Lethe's own init steps in the docker-compose stack (service airflow-init).
#
# Airflow's image entrypoint runs first (_AIRFLOW_DB_MIGRATE, _AIRFLOW_WWW_USER_CREATE:
# Airflow's metadata database and the admin user), then execs this script. Every step is
# idempotent, so `docker compose up` may run it on every start. The buckets are created
# by the minio-init service (MinIO's mc is not in the Airflow image); the demo data by the
# lethe-demo-data service (profile "demo"). tests/test_compose.py runs this script against
# the test suite's stack.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# First what fails fastest: nothing is deployed on a policy the DAGs cannot enforce.
echo "lethe-init: validating the policies in ${LETHE_POLICY_DIR:?LETHE_POLICY_DIR is not set}"
python -m lethe.policy validate "${LETHE_POLICY_DIR}"

echo "lethe-init: checking that Airflow's metadata database is migrated"
# The entrypoint ignores a failed `airflow db migrate` (`|| true`): check it here.
airflow db check-migrations --migration-wait-timeout 60

echo "lethe-init: granting the Privacy page to the roles Admin, Op and Privacy (FAB)"
# FAB knows no "Lethe Privacy" resource: without the grant everyone, admins included, gets 403.
python "${here}/privacy_access.py"

# Two roles (docs/security.md): the schema owner (lethe_control_admin_db, given to this
# service only) migrates; Airflow's components log in as the runtime role of
# lethe_control_db, which may only append to the audit ledger.
echo "lethe-init: creating the runtime login of lethe_control_db (member of lethe_runtime)"
python -m lethe.control runtime-login --conn-id lethe_control_admin_db --runtime-conn-id lethe_control_db

echo "lethe-init: migrating the privacy control schema (as the owner, lethe_control_admin_db)"
python -m lethe.control migrate --conn-id lethe_control_admin_db

# The telecom connection logs in as a store login (member of lethe_store), not as the
# tables' owner. A schema that does not exist yet (the demo seeds it later, and grants then)
# is skipped with a note.
echo "lethe-init: creating the store login of lethe_telecom_db (member of lethe_store)"
python -m lethe.stores.postgres store-login --conn-id lethe_telecom_admin_db --store-conn-id lethe_telecom_db --schema telecom

echo "lethe-init: creating the Airflow pools the policies name (missing ones only)"
python "${here}/pools.py"

echo "lethe-init: creating the SFTP roots the policies name"
python "${here}/sftp_roots.py"

echo "lethe-init: done. DAGs start paused; roll out as README.md 'Production' says."
