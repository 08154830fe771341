# The profilegate gateway for production: `profilegate serve` on 0.0.0.0:8000 as a non-root user.
#
# Run it against a MongoDB 7+ replica set (or Atlas) by setting MONGODB_URI, e.g.
#   docker run -e MONGODB_URI='mongodb://db1:27017,db2:27017,db3:27017/?replicaSet=rs0' \
#              -e PROFILEGATE_ADMIN_KEY=... -p 8000:8000 --init profilegate
# Without MONGODB_URI the embedded store starts instead and writes to PROFILEGATE_DATA_DIR
# (/data, owned by the non-root user): mount a volume there to keep its data. The embedded
# store is for trials, not for serving real checkouts (see README, "Scale").
#
# Both stages use the same base image, so the virtual environment built in the first one runs
# unchanged in the second (its interpreter links point at the same Python).

FROM python:3.13-slim-trixie AS build

RUN python -m venv /opt/venv
# The venv first on PATH: `pip` and `python` below are the venv's.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the build backend reads: the metadata, the readme it names, and the package.
COPY pyproject.toml README.md ./
COPY src ./src
# Installed non-editable, so the venv holds the package itself and the source can be left behind.
# pip itself is not needed at run time.
RUN pip install --no-cache-dir . \
    && pip uninstall --yes pip


FROM python:3.13-slim-trixie

LABEL org.opencontainers.image.title="profilegate" \
      org.opencontainers.image.description="A profile-enrichment GraphQL gateway for online shops" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed, unprivileged uid/gid, so volume ownership and orchestrators' runAsUser can match it.
RUN groupadd --gid 10001 profilegate \
    && useradd --uid 10001 --gid profilegate --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin profilegate \
    && mkdir /data \
    && chown profilegate:profilegate /data

COPY --from=build /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROFILEGATE_ENV=production \
    PROFILEGATE_HOST=0.0.0.0 \
    PROFILEGATE_PORT=8000 \
    PROFILEGATE_DATA_DIR=/data

# Used only by the embedded store (no MONGODB_URI); empty when MongoDB is used.
VOLUME ["/data"]
USER 10001:10001

EXPOSE 8000

# /healthz answers while the process is alive; /readyz would also need the store to answer.
# The slim image has no curl, so Python's standard library makes the request.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PROFILEGATE_PORT', '8000'), timeout=4)"]

# Host, port and workers come from PROFILEGATE_HOST, PROFILEGATE_PORT and PROFILEGATE_WORKERS.
# Other commands go through the same entrypoint: `docker run --rm -e MONGODB_URI=... IMAGE keys list`.
ENTRYPOINT ["profilegate"]
CMD ["serve"]
