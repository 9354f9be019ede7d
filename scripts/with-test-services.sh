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
      postgres) "$BIN/qikflow" pg stop --name pg-test --port 54330 || true ;;
    esac
  done
}
trap cleanup EXIT

# Each service is stopped on exit only if this run started it: another session (a second
# `make test`, a developer's pytest) may be using the one that was already running.
if [ -z "${QIKFLOW_KAFKA_BOOTSTRAP:-}" ]; then
  if ! "$BIN/qikflow" broker status --name test --port 29092 >/dev/null; then
    # Test data is disposable: a fresh broker does not carry the topics of past runs.
    "$BIN/qikflow" broker wipe --name test --port 29092 >/dev/null
    "$BIN/qikflow" broker start --name test --port 29092
    started+=(kafka)
  fi
  export QIKFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092
fi

if [ -z "${QIKFLOW_DATABASE_URL:-}" ]; then
  if ! "$BIN/qikflow" pg status --name pg-test --port 54330 >/dev/null; then
    "$BIN/qikflow" pg start --name pg-test --port 54330
    started+=(postgres)
  fi
  QIKFLOW_DATABASE_URL="$("$BIN/qikflow" pg url --name pg-test --port 54330)"
  export QIKFLOW_DATABASE_URL
fi

set +e
"$@"
status=$?
set -e
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
exit $status
