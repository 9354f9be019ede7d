#!/usr/bin/env bash
# Run a command with the test services up: a real Kafka broker (and PostgreSQL), started
# here and stopped on exit, unless QIKFLOW_KAFKA_BOOTSTRAP / QIKFLOW_DATABASE_URL name
# existing ones.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
started=()

cleanup() {
  for service in "${started[@]}"; do
    case "$service" in
      kafka) "$BIN/qikflow" broker stop --name test --port 29092 || true ;;
    esac
  done
}
trap cleanup EXIT

if [ -z "${QIKFLOW_KAFKA_BOOTSTRAP:-}" ]; then
  "$BIN/qikflow" broker start --name test --port 29092
  started+=(kafka)
  export QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092
fi

set +e
"$@"
status=$?
set -e
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
exit $status
