#!/bin/sh
# One-shot, as MySQL's root (docker-compose.yml's mysql-setup service): makes the database users the
# stack runs as, each with only what it needs, and sets their passwords from the environment. Run on
# every `docker compose up`, so a changed password or grant takes effect, and a mysql-data volume made
# before these users existed gets them too.
#
#   interaction_data          worker and API: rows, and the per-message tables interactions_<n> they
#                             create and drop at run time (src/storage/hotTables.ts); no ALTER, INDEX
#                             or REFERENCES, which only migrations use
#   interaction_data_migrate  `npm run migrate` (the migrate service): the schema of interaction_data
#   temporal                  the Temporal server: its temporal and temporal_visibility databases
#
# Root's password is MYSQL_PWD (read by the mysql client, kept off the command line).
set -eu

host="${MYSQL_SETUP_HOST:-mysql}"
port="${MYSQL_SETUP_PORT:-3306}"

# The passwords are written into SQL here and into MySQL URLs by docker-compose.yml, so only characters
# that need no quoting in either are accepted.
check() {
  name="$1"; value="$2"
  if [ -z "$value" ]; then echo "mysql-setup: $name is empty" >&2; exit 1; fi
  case "$value" in
    *[!A-Za-z0-9._~-]*) echo "mysql-setup: $name may contain only letters, digits and - . _ ~" >&2; exit 1 ;;
  esac
}
check MYSQL_PASSWORD "${MYSQL_PASSWORD:-}"
check MYSQL_MIGRATE_PASSWORD "${MYSQL_MIGRATE_PASSWORD:-}"
check MYSQL_TEMPORAL_PASSWORD "${MYSQL_TEMPORAL_PASSWORD:-}"

# compose starts this once MySQL is healthy; the wait covers a server still finishing its start.
tries=30
until error=$(mysql -h "$host" -P "$port" -uroot -e 'SELECT 1' 2>&1 >/dev/null); do
  tries=$((tries - 1))
  if [ "$tries" -le 0 ]; then echo "mysql-setup: cannot log in to MySQL at $host:$port as root (MYSQL_ROOT_PASSWORD): $error" >&2; exit 1; fi
  echo "mysql-setup: waiting for MySQL at $host:$port"; sleep 2
done

# In GRANT, `_` in a database name is a wildcard; the backslash makes it a plain underscore.
mysql -h "$host" -P "$port" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS interaction_data CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE USER IF NOT EXISTS 'interaction_data'@'%' IDENTIFIED BY '${MYSQL_PASSWORD}';
ALTER USER 'interaction_data'@'%' IDENTIFIED BY '${MYSQL_PASSWORD}';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'interaction_data'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON \`interaction\_data\`.* TO 'interaction_data'@'%';

CREATE USER IF NOT EXISTS 'interaction_data_migrate'@'%' IDENTIFIED BY '${MYSQL_MIGRATE_PASSWORD}';
ALTER USER 'interaction_data_migrate'@'%' IDENTIFIED BY '${MYSQL_MIGRATE_PASSWORD}';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'interaction_data_migrate'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES ON \`interaction\_data\`.* TO 'interaction_data_migrate'@'%';

CREATE USER IF NOT EXISTS 'temporal'@'%' IDENTIFIED BY '${MYSQL_TEMPORAL_PASSWORD}';
ALTER USER 'temporal'@'%' IDENTIFIED BY '${MYSQL_TEMPORAL_PASSWORD}';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'temporal'@'%';
GRANT ALL PRIVILEGES ON \`temporal\`.* TO 'temporal'@'%';
GRANT ALL PRIVILEGES ON \`temporal\_visibility\`.* TO 'temporal'@'%';
SQL
echo "mysql-setup: users interaction_data, interaction_data_migrate and temporal are ready"
