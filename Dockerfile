# syntax=docker/dockerfile:1
# One image for every qikflow role: `ingest`, `worker`, `sink postgres|lake`, `db migrate`,
# `stats`, `simulate`. The compose service picks the role with its command. Kafka is its
# own image (apache/kafka): no Java and no Kafka jars in here.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY qikflow ./qikflow
COPY ingest ./ingest
COPY streams ./streams
COPY sinks ./sinks
RUN python -m venv /opt/qikflow \
    && /opt/qikflow/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/qikflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QIKFLOW_HOME=/var/lib/qikflow
# A fixed, unprivileged uid so volume ownership is predictable. The state folders exist
# and belong to it before any volume is mounted, so fresh named volumes inherit that.
RUN groupadd --system --gid 10001 qikflow \
    && useradd --system --uid 10001 --gid qikflow --home-dir /var/lib/qikflow \
        --shell /usr/sbin/nologin qikflow \
    && mkdir -p /var/lib/qikflow/spool /var/lib/qikflow/lake /var/lib/qikflow/streams \
    && chown -R qikflow:qikflow /var/lib/qikflow
COPY --from=build /opt/qikflow /opt/qikflow
USER qikflow
WORKDIR /var/lib/qikflow
# Ingest HTTP; Faust web (/metrics) of the streams worker. Health checks need no curl:
# they use the image's Python, e.g. urllib against http://127.0.0.1:8080/readyz.
EXPOSE 8080 6066
ENTRYPOINT ["qikflow"]
CMD ["--help"]
